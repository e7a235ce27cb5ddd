// avchat's charts in a browser UI: the SIP session chart from avchat/machines, unchanged, with its one
// I/O actor (the SIP dialog) provided by a simulated peer that answers after ringing and follows
// mutes. A real UI would provide a dialog actor that talks to a server, a WebSocket or an avchat
// endpoint instead. Bundle it for the page: esbuild main.js --bundle --format=iife --outfile=bundle.js
import { sipSessionMachine } from 'avchat/machines';
import { createActor, fromCallback } from 'xstate';

const log = (text) => {
  const li = document.createElement('li');
  li.textContent = text;
  document.getElementById('log').append(li);
};

/** The negotiated media as the simulated peer answers it: PCMU audio in `direction`, H.263 video. */
const plan = (direction) => {
  const remote = (rtpPort) => ({ address: '192.0.2.20', rtpPort, rtcpPort: rtpPort + 1 });
  return {
    video: { kind: 'video', payloadType: 34, codec: 'H263', clockRate: 90000, local: { rtpPort: 16384, rtcpPort: 16385 }, remote: remote(16384), direction: 'sendrecv' },
    audio: { kind: 'audio', payloadType: 0, codec: 'PCMU', clockRate: 8000, local: { rtpPort: 16386, rtcpPort: 16387 }, remote: remote(16386), direction },
  };
};

/** A peer that rings for 300 ms, answers, takes re-INVITEs for mute and unmute, and answers BYE. */
const simulatedPeer = fromCallback(({ input, sendBack, receive }) => {
  log(`INVITE ${input.target}`);
  const timers = [
    setTimeout(() => sendBack({ type: 'SIP.TRYING' }), 50),
    setTimeout(() => (log('180 Ringing'), sendBack({ type: 'SIP.RINGING' })), 100),
    setTimeout(() => (log('200 OK'), sendBack({ type: 'SIP.ESTABLISHED', plan: plan('sendrecv') })), 400),
  ];
  receive((command) => {
    if (command.type === 'SET_AUDIO') {
      log(`re-INVITE a=${command.direction}`);
      timers.push(setTimeout(() => sendBack({ type: 'SIP.MEDIA_UPDATED', plan: plan(command.direction) }), 50));
    } else if (command.type === 'HANGUP') {
      log('BYE');
      timers.push(setTimeout(() => sendBack({ type: 'SIP.TERMINATED', by: 'local' }), 50));
    }
  });
  return () => timers.forEach(clearTimeout);
});

let session;
const show = (snapshot) => {
  const state = JSON.stringify(snapshot.value);
  document.getElementById('state').textContent = `${state}${snapshot.status === 'done' ? ` — ${snapshot.output?.reason}` : ''}`;
  document.body.dataset.state = typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value)[0];
  document.body.dataset.audio = snapshot.context.plan?.audio?.direction ?? '';
  if (snapshot.status === 'done') document.body.dataset.outcome = snapshot.output?.reason ?? '';
};

const actions = {
  call: () => {
    session?.stop();
    delete document.body.dataset.outcome;
    session = createActor(sipSessionMachine.provide({ actors: { sipDialog: simulatedPeer } }), {
      input: { role: 'caller', target: 'sip:friend@192.0.2.20' },
    });
    session.subscribe(show);
    session.start();
    show(session.getSnapshot());
  },
  mute: () => session?.send({ type: 'MUTE' }),
  unmute: () => session?.send({ type: 'UNMUTE' }),
  hangup: () => session?.send({ type: 'HANGUP' }),
};
for (const button of document.querySelectorAll('button[data-action]'))
  button.addEventListener('click', () => actions[button.dataset.action]());
document.body.dataset.ready = 'true';
