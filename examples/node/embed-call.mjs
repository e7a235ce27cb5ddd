// Embedding avchat in a Node app: two endpoints on this machine, a reflector for the NAT probe; the
// caller calls, watches the call's state and media stats as RxJS streams, mutes for a second, then
// hangs up. Run it from a project that has avchat installed:  node embed-call.mjs [firstPort]
// (it uses firstPort … firstPort + 11 on 127.0.0.1; default 25060).
import { distinctUntilChanged, filter, map } from 'rxjs';
import { openEndpoint, startReflector } from 'avchat';

const base = Number(process.argv[2] ?? 25060);
const HOST = '127.0.0.1';
const reflector = await startReflector({ address: HOST, port: base, alternatePort: base + 1 });
const open = (name, sipPort, mediaPort) =>
  openEndpoint({
    name,
    bindAddress: HOST,
    advertisedAddress: HOST,
    sipPort,
    mediaPort,
    reflector: { address: HOST, port: reflector.port },
    upnp: 'off',
    media: { rtcpMinIntervalMs: 500 },
  });
const callee = await open('callee', base + 2, base + 4);
const caller = await open('caller', base + 3, base + 8);

try {
  const answered = callee.answerNext({ autoAnswer: true });
  const call = caller.call(callee.uri);

  // The call chart's state, as it changes.
  call.state$
    .pipe(
      map((s) => JSON.stringify(s.value)),
      distinctUntilChanged(),
    )
    .subscribe((state) => console.log(`caller state: ${state}`));
  call.nat$.subscribe((nat) => console.log(`NAT probe: ${nat.report?.verdict ?? 'skipped'}`));
  // Media stats of all four ports whenever one changes: here, a line per 50 audio packets received.
  call.stats$
    .pipe(
      map((stats) => Math.floor(stats.audioRtp.packetsReceived / 50) * 50),
      distinctUntilChanged(),
      filter((n) => n > 0),
    )
    .subscribe((n) => console.log(`audio packets received: ${n}`));
  // Mute a second after the call is up, unmute a second later, hang up a second after that.
  const established = new Promise((resolve) =>
    call.state$.pipe(filter((s) => s.matches({ session: { active: 'established' } }))).subscribe(resolve),
  );
  await established;
  await new Promise((r) => setTimeout(r, 1000));
  call.send({ type: 'MUTE' });
  await new Promise((r) => setTimeout(r, 1000));
  call.send({ type: 'UNMUTE' });
  await new Promise((r) => setTimeout(r, 1000));
  call.send({ type: 'HANGUP' });

  const outcome = await call.done;
  await answered.done;
  const stats = call.bus.snapshot();
  console.log(
    JSON.stringify({
      outcome: outcome.reason,
      audioReceived: stats.audioRtp.packetsReceived,
      videoReceived: stats.videoRtp.packetsReceived,
      rtcpReceived: stats.audioRtcp.packetsReceived,
    }),
  );
  process.exitCode = outcome.reason === 'localHangup' ? 0 : 1;
} finally {
  await caller.close();
  await callee.close();
  await reflector.close();
}
