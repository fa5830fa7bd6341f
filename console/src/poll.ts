// Refreshing a page's live figures: call fn now and then every intervalMs
// while the tab is visible; nothing while it is hidden (a background tab
// costs the server nothing), at once again when it shows; stop on unmount.
import { useEffect, useRef } from 'preact/hooks';

export function usePolling(fn: () => Promise<unknown> | void, intervalMs: number, deps: unknown[] = []): void {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    let inFlight = false;
    // One call at a time: the next is scheduled when the previous settles,
    // so a slow server is never asked twice at once.
    const tick = async () => {
      timer = undefined;
      if (stopped || document.visibilityState !== 'visible') return;
      inFlight = true;
      try {
        await latest.current();
      } catch {
        // fn shows its own errors; polling goes on.
      } finally {
        inFlight = false;
      }
      if (!stopped && document.visibilityState === 'visible' && timer === undefined) timer = setTimeout(tick, intervalMs);
    };
    const onVisibility = () => {
      if (document.visibilityState === 'visible') {
        if (timer === undefined && !inFlight) void tick();
      } else if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
    };
    void tick();
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [intervalMs, ...deps]);
}
