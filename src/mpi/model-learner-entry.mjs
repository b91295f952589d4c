// Worker threads do not inherit the TypeScript loader the CLI registers (module hooks are per thread).
import { register } from 'tsx/esm/api';

register();
await import('./model-learner-worker.ts');
