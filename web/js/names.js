// Model names for jobs whose model this page has not seen (a model on another gallery page,
// an old job in the history): each unknown id is looked up by a search for it (the API has
// no GET of one gallery model; gallery.js and installed.js do the same), never twice at once
// and at most names_maxInFlight at a time. A name found goes to jobs_setName and to the
// names_onFound listeners. An id the gallery does not have (any more) is not asked again,
// and one whose lookup failed is tried at most names_maxTries times: it keeps showing its id.
import { api, api_paths } from './api.js';
import { jobs_hasName, jobs_setName } from './jobs.js';

const names_maxInFlight = 3;
const names_maxTries = 3;
const names_termMax = 64;          // bytes of one search term (ids are ASCII, up to 128)
const names_queue = [];            // ids waiting for a free slot
const names_running = new Set();   // ids being looked up now
const names_tries = new Map();     // id -> lookups started; Infinity once the gallery said no
const names_listeners = new Set(); // fn(id, name)
let names_inFlight = 0;

export function names_onFound(fn) { names_listeners.add(fn); }

// names_want(ids): looks up, in the background, the ids that have no name yet.
export function names_want(ids) {
  for (const id of ids) {
    if (!id || jobs_hasName(id) || names_running.has(id) || names_queue.includes(id)) continue;
    if ((names_tries.get(id) || 0) >= names_maxTries) continue;
    names_queue.push(id);
  }
  names_pump();
}

function names_pump() {
  while (names_inFlight < names_maxInFlight && names_queue.length) {
    const id = names_queue.shift();
    if (jobs_hasName(id)) continue;
    names_inFlight++;
    names_running.add(id);
    names_tries.set(id, (names_tries.get(id) || 0) + 1);
    names_lookup(id).finally(() => {
      names_inFlight--;
      names_running.delete(id);
      names_pump();
    });
  }
}

// A search matches substrings, so the answer may hold other models: only the exact id counts.
async function names_lookup(id) {
  let body;
  try {
    const params = new URLSearchParams({ query: id.slice(0, names_termMax), limit: '100' });
    body = await api(api_paths.search(params));
  } catch (e) {
    // 4xx: the question itself is wrong for this id, asking again would not help.
    if (e && e.status >= 400 && e.status < 500) names_tries.set(id, Infinity);
    return;
  }
  const m = (body && Array.isArray(body.models) ? body.models : []).find((x) => x && x.id === id);
  if (!m || typeof m.name !== 'string' || !m.name) {
    names_tries.set(id, Infinity);
    return;
  }
  jobs_setName(id, m.name);
  names_listeners.forEach((fn) => fn(id, m.name));
}
