// The session's periodic work in one place, so that signing out stops all of it and a
// second sign-in in the same tab does not run it twice.
const running = new Set();

/** Runs fn every `ms` until stopAll(). */
export function every(ms, fn) {
  const id = setInterval(fn, ms);
  running.add(id);
  return id;
}

export function stopAll() {
  for (const id of running) clearInterval(id);
  running.clear();
}

export function count() { return running.size; }
