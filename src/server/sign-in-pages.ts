/**
 * The sign-in pages: plain server-rendered HTML forms, no script. Every value is escaped; the state
 * token rides in a hidden field. The portal will replace the look, not the flow.
 */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - Tessera</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}label{display:block;margin-top:1rem}input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}button{margin-top:1rem;font-size:1rem;padding:.5rem 1rem}.error{color:#a00;border:1px solid #a00;padding:.5rem}fieldset{margin-top:1rem}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

const errorBlock = (error?: string) => (error ? `<p class="error" role="alert" id="form-error">${escapeHtml(error)}</p>` : '');
const describedBy = (error?: string) => (error ? ' aria-describedby="form-error"' : '');

export function signInPage(options: { state: string; clientName: string; error?: string; federation?: { label: string } }): string {
  const federated = options.federation
    ? `<form method="post" action="/oauth/federated">
<input type="hidden" name="state" value="${escapeHtml(options.state)}">
<button type="submit">${escapeHtml(options.federation.label)}</button>
</form>`
    : '';
  return page(
    'Sign in',
    `<p>${escapeHtml(options.clientName)} asks to access health records on your behalf.</p>
${errorBlock(options.error)}
<form method="post" action="/oauth/authorize"${describedBy(options.error)}>
<input type="hidden" name="state" value="${escapeHtml(options.state)}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="totp">One-time code (if you set one up)</label>
<input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}">
<button type="submit">Sign in</button>
</form>
${federated}`,
  );
}

export interface PatientChoice {
  id: string;
  name: string;
  birthDate?: string;
}

export function patientSelectionPage(options: { state: string; name?: string; birthdate?: string; results?: PatientChoice[]; error?: string }): string {
  const results = options.results
    ? options.results.length
      ? `<form method="post" action="/oauth/authorize/patient">
<input type="hidden" name="state" value="${escapeHtml(options.state)}">
<input type="hidden" name="action" value="choose">
<fieldset><legend>Patients found</legend>
${options.results
  .map(
    (p, i) =>
      `<label for="patient-${i}"><input type="radio" id="patient-${i}" name="patient" value="${escapeHtml(p.id)}" required> ${escapeHtml(p.name)}${p.birthDate ? `, born ${escapeHtml(p.birthDate)}` : ''}</label>`,
  )
  .join('\n')}
</fieldset>
<button type="submit">Open this patient's record</button>
</form>`
      : '<p role="status">No patient matches.</p>'
    : '';
  return page(
    'Choose a patient',
    `<p>The app asks for one patient's record. Search by name, birth date, or both.</p>
${errorBlock(options.error)}
<form method="post" action="/oauth/authorize/patient" role="search"${describedBy(options.error)}>
<input type="hidden" name="state" value="${escapeHtml(options.state)}">
<input type="hidden" name="action" value="search">
<label for="name">Name</label>
<input id="name" name="name" value="${escapeHtml(options.name ?? '')}">
<label for="birthdate">Birth date (YYYY-MM-DD)</label>
<input id="birthdate" name="birthdate" value="${escapeHtml(options.birthdate ?? '')}" pattern="\\d{4}(-\\d{2}(-\\d{2})?)?">
<button type="submit">Search</button>
</form>
${results}`,
  );
}

export function errorPage(message: string): string {
  return page('Sign-in cannot continue', `<p class="error" role="alert">${escapeHtml(message)}</p><p>Return to the application and start again.</p>`);
}
