import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, setApiLanguage, token } from './api.js';
import { ConsoleContext, useConsole } from './context.js';
import { html } from './html.js';
import { formats, initialLanguage, LANGUAGES, saveLanguage, translator } from './i18n.js';
import { Costs } from './pages/costs.js';
import { Overview } from './pages/overview.js';
import { Pipeline } from './pages/pipeline.js';
import { Queue } from './pages/queue.js';
import { Runs } from './pages/runs.js';
import { Schedule } from './pages/schedule.js';

/** The pages, by the hash they live at ("#/runs"); the first is the default; those with a label are in the menu. */
const PAGES = [
  { path: 'overview', label: 'nav.overview', Page: Overview },
  { path: 'runs', label: 'nav.runs', Page: Runs },
  { path: 'queue', label: 'nav.queue', Page: Queue },
  { path: 'pipeline', label: 'nav.pipeline', Page: Pipeline },
  { path: 'costs', label: 'nav.costs', Page: Costs },
  { path: 'schedule', Page: Schedule },
];

/** The hash as a route: "#/runs/12" → { path: 'runs', params: ['12'] }; "#/runs?status=FAILED" → query status=FAILED. */
function useHashRoute() {
  const read = () => location.hash.replace(/^#\/?/, '');
  const [hash, setHash] = useState(read());
  useEffect(() => {
    const onChange = () => setHash(read());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  const [route, query = ''] = hash.split('?');
  const [path, ...rest] = route.split('/');
  return { path: path || PAGES[0].path, params: rest.map(decodeURIComponent), query: new URLSearchParams(query) };
}

export function App() {
  const [lang, setLang] = useState(initialLanguage);
  // null: asking; { auth, role, can_write }: signed in (or no auth); { needsToken, error? }: the sign-in form.
  const [session, setSession] = useState(null);
  setApiLanguage(lang);
  const t = translator(lang);

  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = t('app.title');
  }, [lang]);

  const check = async () => {
    try {
      setSession(await api('/api/session'));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        const tried = token.get() !== null;
        token.clear();
        setSession({ needsToken: true, error: tried ? error.message : null });
      } else setSession({ failed: error.message });
    }
  };
  useEffect(() => {
    check();
  }, []);

  const chooseLanguage = (value) => {
    saveLanguage(value);
    setLang(value);
  };
  const signOut = () => {
    token.clear();
    setSession({ needsToken: true, error: null });
  };

  const context = { t, f: formats(lang), lang, canWrite: session?.can_write !== false };
  const route = useHashRoute();
  const current = PAGES.find((p) => p.path === route.path) ?? PAGES[0];

  return html`<${ConsoleContext.Provider} value=${context}>
    <header class="top">
      <a class="brand" href="#/overview">${t('app.title')}</a>
      ${session && !session.needsToken && !session.failed
        ? html`<nav aria-label="main">
            ${PAGES.filter((p) => p.label).map((p) => html`<a href=${`#/${p.path}`} aria-current=${p === current ? 'page' : undefined}>${t(p.label)}</a>`)}
            <a href="/docs">${t('nav.docs')}</a>
          </nav>`
        : null}
      <div class="top-tools">
        <label>
          <span class="visually-hidden">${t('lang.label')}</span>
          <select value=${lang} onChange=${(e) => chooseLanguage(e.currentTarget.value)} aria-label=${t('lang.label')}>
            ${Object.entries(LANGUAGES).map(([value, name]) => html`<option value=${value}>${name}</option>`)}
          </select>
        </label>
        ${session?.role === 'api_token_readonly' ? html`<span class="badge" title=${t('auth.readOnlyWhy')}>${t('auth.readOnly')}</span>` : null}
        ${session?.auth ? html`<button type="button" onClick=${signOut}>${t('auth.signOut')}</button>` : null}
      </div>
    </header>
    <main id="main">
      ${session === null
        ? html`<p class="loading">…</p>`
        : session.needsToken
          ? html`<${SignIn} error=${session.error} onSignedIn=${check} />`
          : session.failed
            ? html`<p role="alert" class="error">${t('error.load', { error: session.failed })}</p>`
            : html`<${current.Page} params=${route.params} query=${route.query} />`}
    </main>
  </${ConsoleContext.Provider}>`;
}

function SignIn({ error, onSignedIn }) {
  const { t } = useConsole();
  const [value, setValue] = useState('');
  const submit = (event) => {
    event.preventDefault();
    token.set(value.trim());
    onSignedIn();
  };
  return html`<form class="card sign-in" onSubmit=${submit}>
    <h1>${t('auth.title')}</h1>
    <p>${t('auth.explain')}</p>
    ${error ? html`<p role="alert" class="error">${t('auth.invalid', { error })}</p>` : null}
    <label for="token">${t('auth.token')}</label>
    <input id="token" type="password" autocomplete="off" required value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />
    <button type="submit">${t('auth.submit')}</button>
  </form>`;
}
