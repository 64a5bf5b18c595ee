// The gallery's search state and the request it makes, without the DOM: the state from a
// URL, the search and facets parameters for it. Shared by boot.js (the first search, sent
// before the rest of the UI has loaded) and gallery.js, so both ask for the very same URL.
export const QUERY_PAGE = 12;
export const query_defaults = {
  query: '', category: '', language: '', quantization: '', license: '', min_rating: '',
  min_size_gb: '', max_size_gb: '', sort: 'rating', order: '', fits: '', offset: '0',
  limit: String(QUERY_PAGE),
};
export const query_facetFields = ['category', 'language', 'quantization', 'license'];
export const query_fits = 'full_gpu,partial_gpu,cpu';
const query_machineKey = 'mg.machine';

export function query_fromUrl(search) {
  const q = new URLSearchParams(search);
  const s = { ...query_defaults };
  for (const key of Object.keys(query_defaults)) if (q.has(key)) s[key] = q.get(key);
  return s;
}

// The user's own RAM/VRAM figures in GB as typed ('' when empty), kept in this browser.
export function query_ownFigures() {
  try {
    const m = JSON.parse(localStorage.getItem(query_machineKey) || '{}');
    return { ram: m.ram ?? '', vram: m.vram ?? '' };
  } catch { return { ram: '', vram: '' }; }
}

export function query_saveOwnFigures(ram, vram) {
  try { localStorage.setItem(query_machineKey, JSON.stringify({ ram, vram })); } catch { /* storage blocked */ }
}

// The filters of state s; eff: the machine in effect ({ram, vram, own}) or null. With the
// user's own figures, "fits" asks for models within them; else for the server's fit classes.
export function query_filters(s, eff) {
  const p = new URLSearchParams();
  for (const key of ['query', ...query_facetFields, 'min_rating', 'min_size_gb', 'max_size_gb']) {
    if (s[key] !== '') p.set(key, s[key]);
  }
  if (s.fits === '1') {
    if (eff && eff.own) {
      p.set('max_ram_gb', String(eff.ram));
      p.set('max_vram_gb', String(eff.vram));
    } else {
      p.set('fit', query_fits);
    }
  }
  return p;
}

// The search of state s: its filters, then sort, order and the page.
export function query_search(s, eff) {
  const p = query_filters(s, eff);
  for (const key of ['sort', 'order']) if (s[key] !== '') p.set(key, s[key]);
  p.set('limit', s.limit || String(QUERY_PAGE));
  p.set('offset', s.offset || '0');
  return p;
}

export function query_searchPath(params) {
  return `/api/models/gallery/search?${params}`;
}
