import { useEffect, useRef, useState } from 'preact/hooks';

/** Poll no slower than this: new runs and status changes show without a reload. */
export const POLL_MS = 4000;

/**
 * Loads `load()` now and then POLL_MS after each answer while the tab is visible: never two at once,
 * so a page whose data takes longer than POLL_MS still shows it. Paused while the tab is hidden,
 * and reloaded at once when it shows again. `reload()` fetches now (after an action); `deps`
 * restart it (a filter changed), and an answer for older deps is dropped.
 */
export function useLive(load, deps = []) {
  const [state, setState] = useState({ data: null, error: null, at: null, loading: true });
  const [hidden, setHidden] = useState(document.hidden);
  const latest = useRef(load);
  latest.current = load;
  const generation = useRef(0);
  const poll = useRef({ timer: null, inFlight: false, again: false });

  const reload = async () => {
    const state = poll.current;
    clearTimeout(state.timer);
    // One at a time: a reload asked for meanwhile runs when this one answers.
    if (state.inFlight) {
      state.again = true;
      return;
    }
    state.inFlight = true;
    const mine = generation.current;
    try {
      const data = await latest.current();
      if (mine === generation.current) setState({ data, error: null, at: new Date(), loading: false });
    } catch (error) {
      if (mine === generation.current) setState((s) => ({ ...s, error, loading: false }));
    } finally {
      state.inFlight = false;
      if (state.again || mine !== generation.current) {
        state.again = false;
        reload();
      } else if (!document.hidden) {
        state.timer = setTimeout(reload, POLL_MS);
      }
    }
  };

  useEffect(() => {
    generation.current += 1;
    setState((s) => ({ ...s, loading: true }));
    reload();
    const onVisibility = () => {
      setHidden(document.hidden);
      if (document.hidden) clearTimeout(poll.current.timer);
      else reload();
    };
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      clearTimeout(poll.current.timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, deps);

  return { ...state, hidden, reload };
}

/**
 * An action a page offers (cancel, retry, run now…): `act(async () => message)` shows the message,
 * or the service's error as `describe` words it, in `message`; `busy` while it runs; then `reload()`
 * so the page shows the result.
 */
export function useAction(reload, describe = (error) => error.message) {
  const [message, setMessage] = useState(null);
  const [busy, setBusy] = useState(false);
  const act = async (action) => {
    setBusy(true);
    try {
      setMessage({ ok: true, text: await action() });
    } catch (error) {
      setMessage({ ok: false, text: describe(error) });
    } finally {
      setBusy(false);
      reload();
    }
  };
  return { message, busy, act };
}
