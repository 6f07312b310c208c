import { useEffect, useRef, useState } from 'preact/hooks';

/** Poll no slower than this: new runs and status changes show without a reload. */
export const POLL_MS = 4000;

/**
 * Loads `load()` now and every POLL_MS while the tab is visible; paused while it is hidden, and
 * reloaded at once when it shows again. `reload()` fetches now (after an action).
 * `deps` restart it (a filter changed).
 */
export function useLive(load, deps = []) {
  const [state, setState] = useState({ data: null, error: null, at: null, loading: true });
  const [hidden, setHidden] = useState(document.hidden);
  const latest = useRef(load);
  latest.current = load;
  const tick = useRef(0);

  const reload = async () => {
    const mine = ++tick.current;
    try {
      const data = await latest.current();
      if (mine === tick.current) setState({ data, error: null, at: new Date(), loading: false });
    } catch (error) {
      if (mine === tick.current) setState((s) => ({ ...s, error, loading: false }));
    }
  };

  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    reload();
    let timer = document.hidden ? null : setInterval(reload, POLL_MS);
    const onVisibility = () => {
      setHidden(document.hidden);
      clearInterval(timer);
      timer = null;
      if (!document.hidden) {
        reload();
        timer = setInterval(reload, POLL_MS);
      }
    };
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, deps);

  return { ...state, hidden, reload };
}

/**
 * An action a page offers (cancel, retry, run now…): `act(async () => message)` shows the message,
 * or the service's error, in `message`, and then reloads `live` so the page shows the result.
 */
export function useAction(live) {
  const [message, setMessage] = useState(null);
  const act = async (action) => {
    try {
      setMessage({ ok: true, text: await action() });
    } catch (error) {
      setMessage({ ok: false, text: error.message });
    }
    live.reload();
  };
  return { message, act };
}
