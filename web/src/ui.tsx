import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** Loads data for a view; `reload` runs it again (after a decision, a replay, break-the-glass). */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: Error & { status?: number }; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: Error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function ErrorNote({ error }: { error: Error }) {
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

export function Section({ title, id, children, count }: { title: string; id: string; children: ComponentChildren; count?: number }) {
  return (
    <section aria-labelledby={`${id}-h`} class="card">
      <h2 id={`${id}-h`}>
        {title}
        {count !== undefined && <span class="count"> ({count})</span>}
      </h2>
      {children}
    </section>
  );
}

export function Empty({ what }: { what: string }) {
  return <p class="empty">No {what} on record.</p>;
}

/** The newest rows of a long list first (a page of 2,000 resources stays quick to draw); the rest on request. */
export function useFirst<T>(items: T[], first = 50): { shown: T[]; more: preact.JSX.Element | null } {
  const [all, setAll] = useState(false);
  const shown = all ? items : items.slice(0, first);
  const more =
    items.length > first && !all ? (
      <button type="button" class="secondary" onClick={() => setAll(true)}>
        Show all {items.length}
      </button>
    ) : null;
  return { shown, more };
}
