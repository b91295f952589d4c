/** An OAuth error response (RFC 6749 §4.1.2.1, §5.2; RFC 7009, RFC 7662). */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}
