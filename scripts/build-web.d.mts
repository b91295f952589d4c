/** Builds the portal into web/dist; returns that directory. */
export function buildWeb(): Promise<string>;
