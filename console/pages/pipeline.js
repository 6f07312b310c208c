import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useConsole, WriteButton } from '../context.js';
import { html } from '../html.js';
import { useAction, useLive } from '../live.js';
import { LiveNote } from '../parts.js';

const STATUSES = ['PENDING', 'PROCESSING', 'BLUEPRINT_DONE', 'BLUEPRINT_ERROR'];
const PAGE_SIZE = 50;

export function Pipeline({ params }) {
  return params[0] === 'blueprint' ? html`<${Blueprint} id=${params[1]} />` : html`<${Items} />`;
}

function Items() {
  const { t, f } = useConsole();
  const [status, setStatus] = useState('');
  const [search, setSearch] = useState('');
  const [offset, setOffset] = useState(0);
  const live = useLive(async () => {
    // A search with no word yet (only spaces or punctuation) is no search: the service would refuse it.
    const q = /[\p{L}\p{N}]/u.test(search) ? { q: search } : {};
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset), ...(status ? { status } : {}), ...q });
    const [items, blueprints] = await Promise.all([api(`/api/harvest-items?${query}`), api('/api/blueprints?limit=20')]);
    return { items, blueprints };
  }, [status, search, offset]);

  const { message, act } = useAction(live.reload);
  const retry = (item) => act(async () => t('pipeline.retried', { id: (await api(`/api/harvest-items/${item.id}/retry`, { method: 'POST', body: {} })).id }));
  const retryFailed = () => act(async () => t('pipeline.retriedAll', { count: (await api('/api/harvest-items/retry-failed', { method: 'POST', body: {} })).retried }));

  return html`<section aria-labelledby="pipeline-title">
    <div class="heading">
      <h1 id="pipeline-title">${t('pipeline.title')}</h1>
      <${LiveNote} live=${live} />
    </div>
    <${AddItems} onAdded=${(text) => act(async () => text)} />
    ${message ? html`<p role="status" class=${message.ok ? 'note' : 'error'}>${message.text}</p>` : null}
    <div class="heading">
      <h2>${t('pipeline.items')}</h2>
      <label>${t('runs.status')}
        <select value=${status} onChange=${(e) => { setOffset(0); setStatus(e.currentTarget.value); }}>
          <option value="">${t('runs.all')}</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
      <label>${t('pipeline.search')}
        <input type="search" value=${search} onInput=${(e) => { setOffset(0); setSearch(e.currentTarget.value); }} placeholder=${t('pipeline.searchHint')} />
      </label>
      <${WriteButton} onClick=${retryFailed}>${t('pipeline.retryFailed')}</${WriteButton}>
    </div>
    ${live.data
      ? html`<table class="table items">
            <thead><tr><th scope="col">#</th><th scope="col">${t('pipeline.itemTitle')}</th><th scope="col">${t('runs.status')}</th><th scope="col">${t('pipeline.created')}</th><th scope="col">${t('runs.error')}</th><th scope="col"><span class="visually-hidden">${t('queue.actions')}</span></th></tr></thead>
            <tbody>
              ${live.data.items.map(
                (item) => html`<tr key=${item.id} data-item=${item.id}>
                  <td>${item.id}</td><td>${item.title}</td><td class="item-status">${item.status}</td><td>${f.dateTime(item.created_at)}</td><td class="clip">${item.error_message ?? ''}</td>
                  <td>${item.status === 'BLUEPRINT_ERROR' ? html`<${WriteButton} onClick=${() => retry(item)} aria-label=${t('pipeline.retryOne', { id: item.id })}>${t('pipeline.retry')}</${WriteButton}>` : null}</td>
                </tr>`,
              )}
            </tbody>
          </table>
          <nav class="pager" aria-label=${t('runs.pages')}>
            <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE_SIZE))}>${t('runs.newer')}</button>
            <button type="button" disabled=${live.data.items.length < PAGE_SIZE} onClick=${() => setOffset(offset + PAGE_SIZE)}>${t('runs.older')}</button>
          </nav>
          <h2>${t('pipeline.blueprints')}</h2>
          <table class="table blueprints">
            <thead><tr><th scope="col">#</th><th scope="col">${t('pipeline.exam')}</th><th scope="col">${t('pipeline.topics')}</th><th scope="col">${t('pipeline.dropsAt')}</th></tr></thead>
            <tbody>
              ${live.data.blueprints.map(
                (bp) => html`<tr key=${bp.id} data-blueprint=${bp.id}>
                  <td><a href=${`#/pipeline/blueprint/${bp.id}`}>#${bp.id}</a></td><td>${bp.exam_name}</td><td>${bp.topics.length}</td><td>${bp.drops_generated_at ? f.dateTime(bp.drops_generated_at) : t('pipeline.dropsPending')}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
      : null}
  </section>`;
}

/** One item by its fields, or many pasted as a JSON array of { title, content, source_url? }. */
function AddItems({ onAdded }) {
  const { t } = useConsole();
  const [form, setForm] = useState({ title: '', content: '', source_url: '', many: '' });
  const set = (name) => (event) => setForm({ ...form, [name]: event.currentTarget.value });
  const addOne = (event) => {
    event.preventDefault();
    onAdded(
      (async () => {
        const item = await api('/api/harvest-items', { method: 'POST', body: { title: form.title, content: form.content, ...(form.source_url.trim() ? { source_url: form.source_url.trim() } : {}) } });
        setForm({ ...form, title: '', content: '', source_url: '' });
        return t('pipeline.added', { id: item.id });
      })(),
    );
  };
  const addMany = () =>
    onAdded(
      (async () => {
        let items;
        try {
          items = JSON.parse(form.many);
        } catch (error) {
          throw new Error(t('pipeline.notJson', { error: error.message }));
        }
        const result = await api('/api/harvest-items?onConflict=skip', { method: 'POST', body: items });
        setForm({ ...form, many: '' });
        return t('pipeline.addedMany', { created: result.created.length, skipped: result.skipped.length });
      })(),
    );
  return html`<details class="card add-items">
    <summary>${t('pipeline.add')}</summary>
    <form class="form" onSubmit=${addOne}>
      <label for="item-title">${t('pipeline.itemTitle')}</label>
      <input id="item-title" required value=${form.title} onInput=${set('title')} />
      <label for="item-content">${t('pipeline.content')}</label>
      <textarea id="item-content" required rows="4" value=${form.content} onInput=${set('content')}></textarea>
      <label for="item-url">${t('pipeline.sourceUrl')}</label>
      <input id="item-url" type="url" value=${form.source_url} onInput=${set('source_url')} />
      <div class="actions"><${WriteButton} type="submit" class="primary" onClick=${undefined}>${t('pipeline.addOne')}</${WriteButton}></div>
    </form>
    <div class="form">
      <label for="item-many">${t('pipeline.paste')}</label>
      <textarea id="item-many" rows="4" value=${form.many} onInput=${set('many')} placeholder='[{"title": "…", "content": "…", "source_url": "https://…"}]'></textarea>
      <div class="actions"><${WriteButton} onClick=${addMany}>${t('pipeline.addMany')}</${WriteButton}></div>
    </div>
  </details>`;
}

/** Every drop of a blueprint, a page of 100 (the route's most) at a time. */
async function allDrops(blueprintId) {
  const drops = [];
  for (;;) {
    const page = await api(`/api/drops?blueprintId=${encodeURIComponent(blueprintId)}&limit=100&offset=${drops.length}`);
    drops.push(...page);
    if (page.length < 100) return drops;
  }
}

function Blueprint({ id }) {
  const { t, f } = useConsole();
  const [bypassCache, setBypassCache] = useState(false);
  const live = useLive(async () => {
    const [blueprint, drops] = await Promise.all([api(`/api/blueprints/${encodeURIComponent(id)}`), allDrops(id)]);
    return { blueprint, drops };
  }, [id]);
  const { message, act } = useAction(live.reload);
  if (!live.data) return html`<${LiveNote} live=${live} />`;
  const { blueprint, drops } = live.data;
  const regenerate = () =>
    act(async () => {
      await api(`/api/blueprints/${blueprint.id}/regenerate-drops`, { method: 'POST', body: { bypassCache } });
      return t('pipeline.regenerating');
    });
  return html`<section aria-labelledby="blueprint-title">
    <div class="heading">
      <h1 id="blueprint-title">${t('pipeline.blueprint', { id: blueprint.id, exam: blueprint.exam_name })}</h1>
      <a href="#/pipeline">${t('pipeline.back')}</a>
      <${LiveNote} live=${live} />
    </div>
    <div class="card">
      <p>${t('pipeline.madeWith', { model: blueprint.model ?? '—', version: blueprint.prompt_version ?? '—', cost: f.usd(blueprint.cost_usd) })}</p>
      <div class="actions">
        <label><input type="checkbox" checked=${bypassCache} onChange=${(e) => setBypassCache(e.currentTarget.checked)} /> ${t('pipeline.bypassCache')}</label>
        <${WriteButton} onClick=${regenerate}>${t('pipeline.regenerate')}</${WriteButton}>
      </div>
      ${blueprint.drops_regenerate ? html`<p class="muted">${t('pipeline.regeneratePending')}</p>` : null}
      ${message ? html`<p role="status" class=${message.ok ? 'note' : 'error'}>${message.text}</p>` : null}
    </div>
    ${blueprint.topics.map(
      (topic) => html`<article class="card topic" data-topic=${topic.code}>
        <h2>${topic.name} <code>${topic.code}</code></h2>
        <p class="muted">${topic.discipline}</p>
        <ol class="drops">
          ${drops.filter((d) => d.topic_code === topic.code).map((d) => html`<li><strong>${d.title}</strong> — ${d.content}</li>`)}
        </ol>
      </article>`,
    )}
  </section>`;
}
