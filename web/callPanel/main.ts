import type { CallRole } from '../../machines/types.ts';
import { ACTIONS, HOMES, callInput, idleView, simulatedCallMachine, startPhone, type Phone, type PhoneAction, type PhoneView } from './phone.ts';
import { simulatedLine } from './simulatedLine.ts';

/**
 * The call panel: two phones in one page, Alice (caller) and Bob (callee), each running the call
 * chart from machines/ with simulated actors, on a simulated SIP line. Every panel exposes what it
 * shows as data attributes (`data-state`, `data-session`, `data-audio-send`, `data-outcome`) for
 * tests and other tools.
 */

const ROLES: readonly CallRole[] = ['caller', 'callee'];
const LOG_LINES = 60;

const logList = document.querySelector<HTMLUListElement>('#log')!;

function log(who: string, text: string): void {
  const item = document.createElement('li');
  item.textContent = `${who}: ${text}`;
  logList.prepend(item);
  while (logList.children.length > LOG_LINES) logList.lastElementChild!.remove();
}

const line = simulatedLine(HOMES, { latencyMs: HOMES.caller.latencyMs, onNote: (n) => log(`${HOMES[n.from].name} (line)`, n.message) });
const machines = { caller: simulatedCallMachine(HOMES.caller, line), callee: simulatedCallMachine(HOMES.callee, line) };
const phones: Partial<Record<CallRole, Phone>> = {};

function panel(role: CallRole): HTMLElement {
  return document.querySelector<HTMLElement>(`.phone[data-role="${role}"]`)!;
}

function field(role: CallRole, name: string): HTMLElement {
  return panel(role).querySelector<HTMLElement>(`[data-field="${name}"]`)!;
}

function render(role: CallRole, view: PhoneView): void {
  const root = panel(role);
  root.dataset.status = view.status;
  root.dataset.state = view.state;
  root.dataset.session = view.session;
  root.dataset.audioSend = view.audioSend ?? '';
  root.dataset.outcome = view.outcome ?? '';
  field(role, 'state').textContent = view.state;
  field(role, 'session').textContent = view.session || '—';
  field(role, 'media').textContent = Object.entries(view.media).map(([port, s]) => `${port}: ${s}`).join('\n') || '—';
  field(role, 'outcome').textContent = view.outcome ?? '—';
  for (const button of root.querySelectorAll<HTMLButtonElement>('button[data-action]')) button.disabled = !view.can[button.dataset.action as PhoneAction];
}

let pending = false;
/** Render both phones once per frame, however many snapshots came in. */
function update(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    for (const role of ROLES) render(role, phones[role]?.view() ?? idleView(role));
  });
}

function start(role: CallRole): void {
  phones[role]?.stop();
  phones[role] = startPhone(role, machines[role], callInput(role), {
    onChange: update,
    onEvent: (e) => log(HOMES[e.role].name, `${e.chart} ← ${e.type}`),
  });
  update();
}

const EVENTS: Readonly<Record<Exclude<PhoneAction, 'call'>, Parameters<Phone['send']>[0]>> = {
  answer: { type: 'ANSWER' },
  reject: { type: 'REJECT' },
  mute: { type: 'MUTE' },
  unmute: { type: 'UNMUTE' },
  hangup: { type: 'HANGUP' },
};

function act(role: CallRole, action: PhoneAction): void {
  if (action === 'call') {
    // Bob listens again if his last call is over, then Alice calls.
    if (phones.callee?.actor.getSnapshot().status !== 'active') start('callee');
    start('caller');
  } else phones[role]?.send(EVENTS[action]);
}

for (const role of ROLES) {
  const root = panel(role);
  root.querySelector('h2')!.textContent = `${HOMES[role].name} (${role}, ${HOMES[role].localAddress} behind ${HOMES[role].publicAddress})`;
  for (const button of root.querySelectorAll<HTMLButtonElement>('button[data-action]')) {
    const action = button.dataset.action as PhoneAction;
    if (!ACTIONS.includes(action)) throw new Error(`unknown action ${action}`);
    button.addEventListener('click', () => act(role, action));
  }
}

start('callee');
document.body.dataset.ready = 'true';
