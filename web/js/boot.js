// boot.js - sends the page's first search at once, while the rest of the UI still loads
// (an async module with one small import); api() hands its answer to the gallery when the
// gallery asks for the same URL. Skipped when "fits" uses the user's own figures (those
// need the server's profile first).
import { query_fromUrl, query_search, query_searchPath, query_ownFigures } from './query.js';

const boot_state = query_fromUrl(location.search);
const boot_own = query_ownFigures();
if (!(boot_state.fits === '1' && (boot_own.ram !== '' || boot_own.vram !== ''))) {
  const path = query_searchPath(query_search(boot_state, null));
  window.mgPreload = { path, res: fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-cache' }) };
}
