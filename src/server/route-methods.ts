/**
 * The methods each registered route pattern answers, so that a request with another method gets a 405
 * naming the allowed ones, and a path no route has a 404.
 */
export class RouteMethods {
  private readonly routes: { pattern: RegExp; methods: Set<string> }[] = [];

  add(url: string, methods: string | string[]): void {
    const source = url
      .split('/')
      .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    const pattern = new RegExp(`^${source}$`);
    const existing = this.routes.find((r) => r.pattern.source === pattern.source);
    const list = Array.isArray(methods) ? methods : [methods];
    if (existing) {
      list.forEach((m) => existing.methods.add(m));
    } else {
      this.routes.push({ pattern, methods: new Set(list) });
    }
  }

  /** The methods some route answers for this path (without query string); empty when no route has it. */
  allowedFor(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.routes) {
      if (route.pattern.test(path)) route.methods.forEach((m) => methods.add(m));
    }
    return [...methods].sort();
  }
}
