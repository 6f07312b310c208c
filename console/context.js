import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { html } from './html.js';

/** What every page needs: the translator `t`, the formats `f`, the language, and whether this token may write. */
export const ConsoleContext = createContext(null);
export const useConsole = () => useContext(ConsoleContext);

/**
 * A button for a write: disabled, with the reason as its tooltip, for the read-only token. While its
 * action runs (`busy`) it ignores presses but stays focusable (aria-disabled, not disabled): a
 * disabled button drops the keyboard focus to the page's start.
 */
export function WriteButton({ onClick, children, busy, ...rest }) {
  const { t, canWrite } = useConsole();
  return html`<button type="button" ...${rest} disabled=${!canWrite} aria-disabled=${busy ? 'true' : undefined}
    title=${canWrite ? rest.title : t('auth.readOnlyWhy')} onClick=${busy ? undefined : onClick}>${children}</button>`;
}
