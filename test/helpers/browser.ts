/**
 * A minimal browser for the sign-in tests: fetch with a cookie jar per origin and manual redirects, so a
 * test can walk a login the way a user agent does (GET a page, post its form, follow a redirect) and stop
 * at the redirect to the app. Forms are read from the HTML by their hidden fields.
 */
export class TestBrowser {
  private readonly jars = new Map<string, Map<string, string>>();

  /** `observe`: told of every response (e.g. to collect the X-Request-Id of each request to Tessera). */
  constructor(private readonly observe?: (url: URL, method: string, res: Response) => void) {}

  async fetch(url: string | URL, init: { method?: string; form?: Record<string, string> } = {}): Promise<{ status: number; location?: string; html: string; headers: Headers }> {
    const target = new URL(url);
    const jar = this.jars.get(target.origin) ?? new Map<string, string>();
    this.jars.set(target.origin, jar);
    const headers: Record<string, string> = {};
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (init.form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(target, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      headers,
      body: init.form ? new URLSearchParams(init.form).toString() : undefined,
      redirect: 'manual',
    });
    this.observe?.(target, init.method ?? (init.form ? 'POST' : 'GET'), res);
    for (const setCookie of res.headers.getSetCookie()) {
      const [pair, ...attributes] = setCookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location') ?? undefined;
    return { status: res.status, location: location ? new URL(location, target).toString() : undefined, html: await res.text(), headers: res.headers };
  }

  /** Follows redirects (GET) until one leaves for `stopAt` (the app's redirect URI) or a page is shown. */
  async follow(url: string, stopAt: string): Promise<{ status: number; location?: string; html: string; headers: Headers }> {
    let res = await this.fetch(url);
    for (let hops = 0; res.location && !res.location.startsWith(stopAt) && hops < 10; hops++) {
      res = await this.fetch(res.location);
    }
    return res;
  }
}

/** The value of a hidden input in a page. */
export function hiddenField(html: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(html);
  if (!m) throw new Error(`no hidden field ${name} in page:\n${html.slice(0, 500)}`);
  return m[1].replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}
