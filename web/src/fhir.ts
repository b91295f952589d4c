import { accessToken, type Session } from './session.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Resource = { resourceType: string; id?: string; meta?: { versionId?: string; lastUpdated?: string; source?: string; tag?: { system?: string; code?: string }[] }; [k: string]: any };
export interface Bundle {
  resourceType: 'Bundle';
  total?: number;
  link?: { relation: string; url: string }[];
  entry?: { resource?: Resource; search?: { mode?: string } }[];
}

/** An error answer, with the OperationOutcome's text when there is one. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * Every data request of the portal goes through here, with the signed-in user's token: the one access
 * policy and the audit apply to the portal like to any app. Search criteria that may name a person are
 * POSTed (`_search`, form body) so that no name or birth date ends up in a URL's query string.
 */
export class Api {
  /** `purpose`: a purpose of use declared for this view (per patient); undefined: the one declared at sign-in. */
  constructor(
    private readonly session: Session,
    readonly purpose?: string,
  ) {}

  /** The same user, declaring another purpose of use (the server checks that the role may). */
  withPurpose(purpose: string | undefined): Api {
    return purpose === this.purpose ? this : new Api(this.session, purpose);
  }

  /** A fetch with the user's token for this purpose; a token the server no longer takes is renewed once from the session. */
  private async authorized(url: string, init: RequestInit): Promise<Response> {
    const send = (token: string) => fetch(url, { ...init, cache: 'no-store', headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
    const token = await accessToken(this.purpose);
    const res = await send(token);
    return res.status === 401 ? send(await accessToken(this.purpose, token)) : res;
  }

  private async call<T>(method: string, url: string, body?: string, contentType?: string): Promise<T> {
    const res = await this.authorized(url, { method, headers: { accept: 'application/fhir+json', ...(contentType ? { 'content-type': contentType } : {}) }, body });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as any) : undefined;
    if (!res.ok) {
      const detail = json?.issue?.map((i: any) => i.diagnostics ?? i.details?.text).filter(Boolean).join('; ') || json?.message || json?.error || res.statusText;
      throw new ApiError(res.status, detail);
    }
    return json as T;
  }

  private url(path: string): string {
    return path.startsWith('http') ? path : path.startsWith('/') && !path.startsWith('/fhir') ? path : `${this.session.fhirBase}/${path.replace(/^\/?(fhir\/)?/, '')}`;
  }

  /** POST with a plain JSON body (CDS Hooks and the interface API are not FHIR). */
  postJson<T = any>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', this.url(path), JSON.stringify(body), 'application/json');
  }

  get<T = any>(path: string): Promise<T> {
    return this.call<T>('GET', this.url(path));
  }

  /** POST with a FHIR JSON body (operations, creates). */
  post<T = any>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', this.url(path), JSON.stringify(body), 'application/fhir+json');
  }

  put<T = any>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PUT', this.url(path), JSON.stringify(body), 'application/fhir+json');
  }

  /** A search with its criteria in the body (POST Type/_search). */
  search(type: string, criteria: Record<string, string>): Promise<Bundle> {
    return this.call<Bundle>('POST', this.url(`${type}/_search`), new URLSearchParams(criteria).toString(), 'application/x-www-form-urlencoded');
  }

  /** Follows a Bundle's `next` links and returns every resource (bounded by `max`). */
  async all(first: string, max = 20000): Promise<Resource[]> {
    const out: Resource[] = [];
    let url: string | undefined = first;
    while (url && out.length < max) {
      const page: Bundle = await this.get<Bundle>(url);
      for (const e of page.entry ?? []) if (e.resource && e.search?.mode !== 'outcome') out.push(e.resource);
      url = page.link?.find((l) => l.relation === 'next')?.url;
    }
    return out;
  }

  /** An attachment (a Binary: its original bytes, of its own content type) or a message, fetched with the token. */
  async original(path: string): Promise<Blob> {
    const res = await this.authorized(this.url(path), {});
    if (!res.ok) throw new ApiError(res.status, res.statusText);
    const blob = await res.blob();
    if (!/json/.test(res.headers.get('content-type') ?? '')) return blob;
    const binary = JSON.parse(await blob.text()) as { resourceType?: string; contentType?: string; data?: string };
    return binary.resourceType === 'Binary' && binary.data ? base64Blob(binary.data, binary.contentType) : blob;
  }

  /** An attachment or a message fetched with the token, handed to the browser as a download. */
  async download(path: string, filename: string): Promise<void> {
    saveAs(await this.original(path), filename);
  }
}

/** Base64 data (a Binary's, an attachment's) as a Blob of its content type. */
export const base64Blob = (data: string, contentType?: string): Blob => new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], { type: contentType ?? 'application/octet-stream' });

/** Hands a Blob to the browser as a file download. */
export function saveAs(blob: Blob, filename: string): void {
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

export const resources = (b: Bundle): Resource[] => (b.entry ?? []).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource as Resource).filter(Boolean);
