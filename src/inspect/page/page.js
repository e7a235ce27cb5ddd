// The avchat inspector page: every actor of the call with its statechart (Mermaid, drawn here from
// the source the server sends) and its current states highlighted, the event log, and each call's
// media stats plotted on canvases. It reads one WebSocket, /live, on the server that served it, and
// fetches nothing else. State is taken from @xstate.snapshot only: the snapshot in an @xstate.actor
// event is read later than the actor was created, and can be newer than the snapshots that follow it.
//
// For tests and for a look with the browser's inspector, the DOM carries what is shown:
//   details.actor[data-endpoint][data-machine][data-root][data-active][data-status][data-highlighted]
//   .history li[data-state]         every state an actor went through, in order
//   .stats tr[data-port][data-points], canvas[data-metric][data-points]

(() => {
  const PORTS = ['videoRtp', 'videoRtcp', 'audioRtp', 'audioRtcp'];
  const COLORS = { videoRtp: '#1565c0', videoRtcp: '#64b5f6', audioRtp: '#2e7d32', audioRtcp: '#81c784' };
  const OPEN_CHARTS = new Set(['call', 'sipSession', 'media']);
  // Periodic media chatter, hidden from the event log unless asked for.
  const QUIET_EVENTS = new Set(['PORT.ACTIVITY', 'RTCP.SENT', 'REPORT']);
  const isQuiet = (type) => QUIET_EVENTS.has(type) || /^xstate\.after\.\w+RtcpInterval\./.test(type);
  const MAX_EVENTS = 2000;
  const MAX_POINTS = 240;
  const METRICS = [
    { key: 'packetsPerSecond', caption: 'packets/s received (dashed: sent)' },
    { key: 'loss', caption: "loss of the peer's stream, % (RTCP ports)" },
    { key: 'jitter', caption: "jitter of the peer's stream, ms (RTCP ports)" },
  ];

  /** @type {Record<string, {mermaid: string, states: Record<string, string>}>} */
  let diagrams = {};
  const actors = new Map();
  const calls = new Map();
  const names = new Map();
  const callsEl = document.getElementById('calls');
  const eventsEl = document.getElementById('events');

  const mermaid = window.mermaid;
  if (mermaid) {
    mermaid.initialize({
      startOnLoad: false,
      securityLevel: 'strict',
      theme: 'neutral',
      maxTextSize: 1_000_000,
      maxEdges: 5000,
    });
  }

  const h = (tag, attrs = {}, ...children) => {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined) continue;
      if (k === 'text') el.textContent = v;
      else el.setAttribute(k, String(v));
    }
    for (const child of children) if (child) el.append(child);
    return el;
  };

  const keyOf = (endpoint, sessionId) => `${endpoint}\u0000${sessionId}`;

  const clock = (ms) => {
    const d = new Date(Number(ms) || Date.now());
    return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  };

  /** `{ established: { local: 'muted' } }` → `['established.local.muted']`, one path per parallel region. */
  function leafPaths(value) {
    if (typeof value === 'string') return [value];
    if (!value || typeof value !== 'object') return [];
    return Object.entries(value).flatMap(([key, child]) => {
      const inner = leafPaths(child);
      return inner.length > 0 ? inner.map((p) => `${key}.${p}`) : [key];
    });
  }

  function notice(text) {
    document.getElementById('notice').textContent = text;
  }

  // ---- calls -------------------------------------------------------------------------------------

  function callView(endpoint, rootId) {
    const key = keyOf(endpoint, rootId);
    let call = calls.get(key);
    if (call) return call;
    callsEl.querySelector('.empty')?.remove();
    const actorsEl = h('div', { class: 'actors' });
    const stats = statsView(endpoint, rootId);
    const el = h(
      'section',
      { class: 'call', 'data-endpoint': endpoint, 'data-root': rootId, 'data-status': 'active' },
      h('h2', { text: `${endpoint} — call ${rootId}` }),
      actorsEl,
      stats.el,
    );
    // Endpoints in the order they showed up; an endpoint's newest call first (listen answers one after another).
    const sameEndpoint = [...callsEl.querySelectorAll('section.call')].find(
      (c) => c.getAttribute('data-endpoint') === endpoint,
    );
    if (sameEndpoint) sameEndpoint.before(el);
    else callsEl.append(el);
    call = { el, actorsEl, stats };
    calls.set(key, call);
    return call;
  }

  // ---- actors and their charts -------------------------------------------------------------------

  function machineIdOf(message) {
    try {
      const definition = JSON.parse(message.definition ?? 'null');
      if (definition && typeof definition.id === 'string') return definition.id;
    } catch {
      // A definition cut by the serialiser's depth limit still names the actor.
    }
    return message.name;
  }

  function addActor(message) {
    const endpoint = message.endpoint ?? '';
    const key = keyOf(endpoint, message.sessionId);
    names.set(key, message.name);
    if (actors.has(key)) return;
    const machine = machineIdOf(message);
    const diagram = diagrams[machine];
    if (!diagram) return;
    const rootId = message.rootId ?? message.sessionId;
    const call = callView(endpoint, rootId);
    const parentName = message.parentId ? names.get(keyOf(endpoint, message.parentId)) : undefined;
    const stateEl = h('code', { text: '…' });
    const diagramEl = h('div', { class: 'diagram', 'data-rendered': 'false', title: 'click: actual size / fit' });
    diagramEl.addEventListener('click', () => diagramEl.classList.toggle('natural'));
    const historyEl = h('ol', { class: 'history' });
    const el = h(
      'details',
      {
        class: 'actor',
        'data-endpoint': endpoint,
        'data-machine': machine,
        'data-name': message.name,
        'data-session': message.sessionId,
        'data-root': rootId,
        'data-active': '',
        'data-status': 'active',
        'data-highlighted': '',
      },
      h(
        'summary',
        {},
        h('span', { class: 'name', text: message.name }),
        parentName ? h('span', { class: 'parent', text: ` in ${parentName}` }) : null,
        ' ',
        stateEl,
      ),
      diagramEl,
      historyEl,
    );
    const actor = {
      key,
      machine,
      diagram,
      el,
      stateEl,
      diagramEl,
      historyEl,
      active: '',
      activeIds: new Set(),
      leafIds: new Set(),
      nodes: undefined,
      rendering: false,
    };
    actors.set(key, actor);
    call.actorsEl.append(el);
    el.addEventListener('toggle', () => {
      if (el.open) renderDiagram(actor);
    });
    el.open = OPEN_CHARTS.has(machine);
  }

  let renderChain = Promise.resolve();
  let renders = 0;
  const templates = new Map();

  /**
   * A chart's SVG, drawn once per machine (caller and callee share it) with a placeholder id that
   * each copy replaces with its own. Mermaid draws one chart at a time, and a big chart holds the page
   * for most of a second, so each waits for the page to handle what came in meanwhile.
   */
  function chartTemplate(machine) {
    let template = templates.get(machine);
    if (!template) {
      const id = `avchat-${machine}-template`;
      template = renderChain
        .then(() => new Promise((resolve) => setTimeout(resolve, 0)))
        .then(() => mermaid.render(id, diagrams[machine].mermaid))
        .then(({ svg }) => ({ svg, id }));
      renderChain = template.catch(() => {});
      templates.set(machine, template);
    }
    return template;
  }

  /** Draw an actor's chart (once its panel is open), highlighted as it is now. */
  function renderDiagram(actor) {
    if (actor.rendering || !mermaid) return;
    actor.rendering = true;
    chartTemplate(actor.machine).then(
      ({ svg, id }) => {
        renders += 1;
        actor.diagramEl.innerHTML = svg.split(id).join(`chart${renders}`);
        actor.nodes = indexStates(actor.diagramEl, actor.diagram);
        actor.diagramEl.setAttribute('data-rendered', 'true');
        highlight(actor);
      },
      (err) => {
        actor.diagramEl.textContent = `cannot draw the ${actor.machine} chart: ${err?.message ?? err}`;
        actor.diagramEl.setAttribute('data-rendered', 'error');
      },
    );
  }

  /** Mermaid state id → the SVG elements drawing that state (ids like `chart3-state-sipSession_established-12`). */
  function indexStates(container, diagram) {
    const known = new Set(Object.values(diagram.states));
    const nodes = new Map();
    for (const el of container.querySelectorAll('g[id], g[data-id]')) {
      const candidates = [el.getAttribute('data-id'), /state-([A-Za-z0-9_]+?)(?:----[A-Za-z]+)?-\d+$/.exec(el.id)?.[1]];
      const stateId = candidates.find((c) => c && known.has(c));
      if (!stateId) continue;
      if (!nodes.has(stateId)) nodes.set(stateId, []);
      nodes.get(stateId).push(el);
    }
    return nodes;
  }

  function highlight(actor) {
    if (!actor.nodes) return;
    const shown = [];
    for (const [stateId, els] of actor.nodes) {
      const leaf = actor.leafIds.has(stateId);
      const parent = !leaf && actor.activeIds.has(stateId);
      for (const el of els) {
        el.classList.toggle('active-state', leaf);
        el.classList.toggle('active-parent', parent);
      }
      if (leaf) shown.push(stateId);
    }
    actor.el.setAttribute('data-highlighted', shown.sort().join(' '));
  }

  function updateActor(message) {
    const actor = actors.get(keyOf(message.endpoint ?? '', message.sessionId));
    if (!actor) return;
    const snapshot = message.snapshot ?? {};
    if (snapshot.status) actor.el.setAttribute('data-status', snapshot.status);
    if (snapshot.value === undefined) return;
    const leaves = leafPaths(snapshot.value);
    const active = leaves.join(' ');
    actor.activeIds = new Set();
    actor.leafIds = new Set();
    for (const leaf of leaves) {
      const parts = leaf.split('.');
      parts.forEach((_, i) => {
        const id = actor.diagram.states[parts.slice(0, i + 1).join('.')];
        if (id) actor.activeIds.add(id);
        if (id && i === parts.length - 1) actor.leafIds.add(id);
      });
    }
    actor.el.setAttribute('data-active', active);
    actor.stateEl.textContent = leaves.join(', ');
    if (active !== actor.active) {
      actor.active = active;
      actor.historyEl.append(
        h('li', { 'data-state': active, title: clock(message.createdAt), text: leaves.join(', ') }),
      );
    }
    if (actor.el.open && !actor.rendering) renderDiagram(actor);
    highlight(actor);
  }

  // ---- event log ---------------------------------------------------------------------------------

  function logEvent(message) {
    const endpoint = message.endpoint ?? '';
    const type = message.event?.type ?? '?';
    const target = names.get(keyOf(endpoint, message.sessionId)) ?? message.sessionId;
    const source = message.sourceId ? (names.get(keyOf(endpoint, message.sourceId)) ?? message.sourceId) : undefined;
    const li = h(
      'li',
      { 'data-endpoint': endpoint, 'data-event': type, class: isQuiet(type) ? 'quiet' : undefined },
      h('time', { text: clock(message.createdAt) }),
      ' ',
      h('span', { class: 'endpoint', text: endpoint }),
      ` ${target} ← ${type}${source ? ` (from ${source})` : ''}`,
    );
    eventsEl.prepend(li);
    while (eventsEl.childElementCount > MAX_EVENTS) eventsEl.lastElementChild.remove();
  }

  document
    .getElementById('quiet')
    .addEventListener('change', (e) => eventsEl.classList.toggle('show-quiet', !e.target.checked));

  // ---- media stats -------------------------------------------------------------------------------

  function statsView(endpoint, rootId) {
    const rows = {};
    const body = h('tbody');
    for (const port of PORTS) {
      const cells = {};
      const row = h('tr', { 'data-port': port, 'data-points': 0 });
      const label = h('td', {}, h('span', { class: 'swatch', style: `background:${COLORS[port]}` }), port);
      row.append(label);
      for (const c of ['local', 'sent', 'received', 'sentRate', 'receivedRate', 'loss', 'jitter', 'rtt']) {
        cells[c] = h('td', { text: '–' });
        row.append(cells[c]);
      }
      body.append(row);
      rows[port] = { row, cells };
    }
    const head = h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['port', 'local', 'sent', 'received', 'sent/s', 'recv/s', 'loss %', 'jitter ms', 'RTT ms'].map((t) =>
          h('th', { text: t }),
        ),
      ),
    );
    const canvases = {};
    const figures = METRICS.map(({ key, caption }) => {
      canvases[key] = h('canvas', { 'data-metric': key, 'data-points': 0, width: 360, height: 140 });
      return h('figure', {}, h('figcaption', { text: caption }), canvases[key]);
    });
    const el = h(
      'div',
      { class: 'stats', 'data-endpoint': endpoint, 'data-root': rootId },
      h('table', {}, head, body),
      h('div', { class: 'charts' }, ...figures),
    );
    const series = Object.fromEntries(PORTS.map((p) => [p, []]));
    return { el, rows, canvases, series, last: undefined };
  }

  function addStats(message) {
    const call = callView(message.endpoint ?? '', message.rootId);
    const view = call.stats;
    const previous = view.last;
    view.last = message;
    for (const port of PORTS) {
      const now = message.ports[port];
      if (!now) continue;
      const before = previous?.ports[port];
      const seconds = previous ? (message.atMs - previous.atMs) / 1000 : 0;
      const { cells, row } = view.rows[port];
      cells.local.textContent = String(now.localPort);
      cells.sent.textContent = String(now.packetsSent);
      cells.received.textContent = String(now.packetsReceived);
      cells.loss.textContent = (now.fractionLost * 100).toFixed(1);
      cells.jitter.textContent = now.jitterMs.toFixed(1);
      cells.rtt.textContent = now.rttMs === undefined ? '–' : now.rttMs.toFixed(1);
      if (!before || seconds <= 0) continue;
      const point = {
        atMs: message.atMs,
        sentRate: Math.max(0, now.packetsSent - before.packetsSent) / seconds,
        receivedRate: Math.max(0, now.packetsReceived - before.packetsReceived) / seconds,
        loss: now.fractionLost * 100,
        jitter: now.jitterMs,
      };
      cells.sentRate.textContent = point.sentRate.toFixed(1);
      cells.receivedRate.textContent = point.receivedRate.toFixed(1);
      const points = view.series[port];
      points.push(point);
      if (points.length > MAX_POINTS) points.shift();
      row.setAttribute('data-points', String(points.length));
    }
    if (message.final) call.el.setAttribute('data-status', 'ended');
    drawCharts(view);
  }

  function drawCharts(view) {
    drawChart(view.canvases.packetsPerSecond, view.series, [
      { field: 'receivedRate', dash: [] },
      { field: 'sentRate', dash: [4, 3] },
    ]);
    drawChart(view.canvases.loss, view.series, [{ field: 'loss', dash: [] }], 1);
    drawChart(view.canvases.jitter, view.series, [{ field: 'jitter', dash: [] }], 1);
  }

  /** Lines of every port over the last MAX_POINTS samples, on a y axis from 0 to the largest value. */
  function drawChart(canvas, series, lines, minMax = 10) {
    const ctx = canvas.getContext('2d');
    const { width, height } = canvas;
    const pad = { left: 34, right: 6, top: 6, bottom: 16 };
    ctx.clearRect(0, 0, width, height);
    const all = PORTS.flatMap((p) => series[p]);
    canvas.setAttribute('data-points', String(all.length));
    if (all.length === 0) return;
    const t1 = Math.max(...all.map((p) => p.atMs));
    const t0 = Math.min(...all.map((p) => p.atMs), t1 - 1000);
    let max = minMax;
    for (const p of all) for (const { field } of lines) max = Math.max(max, p[field]);
    max *= 1.1;
    const x = (t) => pad.left + ((t - t0) / (t1 - t0 || 1)) * (width - pad.left - pad.right);
    const y = (v) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
    ctx.strokeStyle = '#bbb';
    ctx.lineWidth = 1;
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.moveTo(pad.left, pad.top);
    ctx.lineTo(pad.left, height - pad.bottom);
    ctx.lineTo(width - pad.right, height - pad.bottom);
    ctx.stroke();
    ctx.fillStyle = '#666';
    ctx.font = '10px sans-serif';
    ctx.fillText(max >= 10 ? max.toFixed(0) : max.toFixed(1), 2, pad.top + 8);
    ctx.fillText('0', 2, height - pad.bottom);
    ctx.fillText(`${((t1 - t0) / 1000).toFixed(0)} s`, width - pad.right - 24, height - 3);
    for (const port of PORTS) {
      const points = series[port];
      if (points.length === 0) continue;
      ctx.strokeStyle = COLORS[port];
      ctx.lineWidth = 1.5;
      for (const { field, dash } of lines) {
        ctx.setLineDash(dash);
        ctx.beginPath();
        points.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.atMs), y(p[field])) : ctx.lineTo(x(p.atMs), y(p[field]))));
        if (points.length === 1) ctx.lineTo(x(points[0].atMs) + 2, y(points[0][field]));
        ctx.stroke();
      }
    }
    ctx.setLineDash([]);
  }

  // ---- the connection ----------------------------------------------------------------------------

  function handle(message) {
    switch (message.type) {
      case 'avchat.hello':
        diagrams = message.diagrams ?? {};
        // The charts shown open are drawn before the call needs them.
        if (mermaid) for (const machine of OPEN_CHARTS) if (diagrams[machine]) chartTemplate(machine);
        if (message.mermaidMissing || window.avchatMermaidMissing)
          notice(message.mermaidMissing ?? window.avchatMermaidMissing);
        return;
      case '@xstate.actor':
        return addActor(message);
      case '@xstate.snapshot':
        return updateActor(message);
      case '@xstate.event':
        return logEvent(message);
      case 'avchat.stats':
        return addStats(message);
      case 'avchat.end':
        for (const call of calls.values()) call.el.setAttribute('data-status', 'ended');
        return;
      default:
    }
  }

  function setConnection(state, text) {
    document.body.setAttribute('data-connection', state);
    document.getElementById('connection').textContent = text;
  }

  if (!mermaid) notice(window.avchatMermaidMissing ?? 'mermaid did not load: the charts cannot be drawn');
  const ws = new WebSocket(`ws://${location.host}/live`);
  ws.onopen = () => setConnection('open', 'live');
  // The server closes when the call (or the CLI) ends; what was shown stays.
  ws.onclose = () => setConnection('closed', 'the call is over; the inspector has closed');
  ws.onmessage = (e) => {
    try {
      handle(JSON.parse(e.data));
    } catch (err) {
      console.error('inspector message', err);
    }
  };
})();
