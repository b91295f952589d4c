/**
 * What a signed-in user granted a client: the facts every token of the authorization carries. One grant
 * id names the authorization: its access tokens carry it (`grant_id`) and its refresh tokens share it
 * (their family), so that revoking the grant stops all of them.
 */
export interface UserGrant {
  grantId: string;
  clientId: string;
  userId: string;
  fhirUser?: string;
  role: string;
  organization: string;
  /** Granted scopes, space-separated. */
  scope: string;
  /** Launch context: the Patient id. */
  patient?: string;
  purposeOfUse?: string;
  /** From the authorization request, for the id_token. */
  nonce?: string;
  /** When the user signed in (epoch seconds), for the id_token's auth_time. */
  authTime: number;
}
