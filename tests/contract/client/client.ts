// client.ts - a small REST client written against the types openapi-typescript generates
// from docs/openapi.yaml (./api.ts, made by client.test.mjs) and the openapi-fetch client:
// health, search, install, the job until it is installed, the job list, a cancel the server
// refuses, the installed list, a search error, and the delete. It compiles only while the
// document describes these operations and fields; it exits non-zero, saying why, when a live
// answer is not what the types promise.
//   node client.js BASE_URL MODEL_ID
import createClient from 'openapi-fetch';
import type { components, paths } from './api.js';   // generated: api.ts

type Job = components['schemas']['Job'];
type ApiError = components['schemas']['Error'];

function expect(ok: unknown, what: string): asserts ok {
  if (!ok) throw new Error(what);
}

const baseUrl = process.argv[2] ?? '';
const modelId = process.argv[3] ?? '';
expect(baseUrl && modelId, 'usage: node client.js BASE_URL MODEL_ID');
const api = createClient<paths>({ baseUrl });

function errorOf(e: ApiError | undefined, what: string): ApiError['error'] {
  expect(e, `${what}: no error answer`);
  return e.error;
}

async function waitInstalled(jobId: string): Promise<Job> {
  const deadline = Date.now() + 20000;
  for (;;) {
    const { data, error } = await api.GET('/api/models/jobs/{job_id}', { params: { path: { job_id: jobId } } });
    expect(data, `job ${jobId}: ${JSON.stringify(error)}`);
    if (data.status === 'installed') return data;
    expect(data.status !== 'failed' && data.status !== 'cancelled', `job ${jobId} ended ${data.status}: ${data.error}`);
    expect(Date.now() < deadline, `job ${jobId} still ${data.status} after 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const health = await api.GET('/api/models/health');
  expect(health.data?.status === 'ok', `health: ${JSON.stringify(health.error)}`);
  console.log(`health: installer ${health.data.installer}, ${health.data.gallery_models} models`);

  const found = await api.GET('/api/models/gallery/search', {
    params: { query: { query: modelId.split('-')[0], sort: 'name', order: 'asc', limit: 50 } },
  });
  expect(found.data, `search: ${JSON.stringify(found.error)}`);
  const model = found.data.models.find((m) => m.id === modelId);
  expect(model, `search: ${modelId} not among ${found.data.total} matches`);
  console.log(`search: ${found.data.total} matches, ${model.name} (${model.sizeGb} GB, ${model.checksum.slice(0, 15)}...)`);

  const queued = await api.POST('/api/models/gallery/{id}/install', { params: { path: { id: modelId } } });
  expect(queued.data, `install: ${JSON.stringify(queued.error)}`);
  expect(queued.response.status === 202, `install: status ${queued.response.status}`);
  expect(queued.response.headers.get('Location') === `/api/models/jobs/${queued.data.job_id}`, 'install: Location');
  console.log(`install: job ${queued.data.job_id} ${queued.data.status}`);

  const job = await waitInstalled(queued.data.job_id);
  expect(job.downloaded === job.total && job.progress === 100, `job: ${JSON.stringify(job)}`);
  console.log(`job: ${job.status}, ${job.downloaded} bytes`);

  const jobs = await api.GET('/api/models/jobs');
  expect(jobs.data, `jobs: ${JSON.stringify(jobs.error)}`);
  expect(jobs.data.jobs.some((j) => j.job_id === job.job_id), `jobs: ${job.job_id} not listed`);
  console.log(`jobs: ${jobs.data.jobs.length}`);

  const cancel = await api.DELETE('/api/models/jobs/{job_id}', { params: { path: { job_id: job.job_id } } });
  const refused = errorOf(cancel.error, 'cancel of a finished job');
  expect(cancel.response.status === 409 && refused.code === 'job_finished', `cancel: ${JSON.stringify(cancel.error)}`);
  console.log(`cancel: ${cancel.response.status} ${refused.code}`);

  const installed = await api.GET('/api/models/installed');
  const entry = installed.data?.models[modelId];
  expect(entry?.status === 'installed', `installed: ${JSON.stringify(installed.data ?? installed.error)}`);
  console.log(`installed: ${entry.path}, ${entry.size} bytes`);

  const bad = await api.GET('/api/models/gallery/search', { params: { query: { limit: 0 } } });
  const invalid = errorOf(bad.error, 'search with limit 0');
  expect(bad.response.status === 400 && invalid.parameter === 'limit', `bad search: ${JSON.stringify(bad.error)}`);
  console.log(`bad search: ${invalid.code} ${invalid.parameter}`);

  const deleted = await api.DELETE('/api/models/{id}', { params: { path: { id: modelId } } });
  expect(deleted.data, `delete: ${JSON.stringify(deleted.error)}`);
  expect(deleted.data.deleted === modelId && deleted.data.file_removed, `delete: ${JSON.stringify(deleted.data)}`);
  console.log(`delete: ${deleted.data.deleted}, file removed`);
  console.log('client: all calls answered as typed');
}

main().catch((e: unknown) => {
  console.error(`client: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
