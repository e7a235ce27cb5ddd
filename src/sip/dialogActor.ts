import type { Subscription } from 'rxjs';
import { Inviter, RequestPendingError, SessionState, UserAgent, type Invitation, type Session } from 'sip.js';
import { fromCallback } from 'xstate';
import { viewForPeer } from '../../machines/publicView.ts';
import type { SipDialogCommand, SipDialogEvent, SipDialogInput } from '../../machines/sipSession.ts';
import type { MediaPlan } from '../../machines/types.ts';
import type { RtpSessionDescriptionHandler } from './sessionDescriptionHandler.ts';
import type { SipUserAgent } from './userAgent.ts';

/** sip.js refuses a re-INVITE for now: one is in progress, ours or the peer's (its messages: "There is an ongoing re-INVITE … transaction."). */
function notNow(err: unknown): boolean {
  return err instanceof RequestPendingError || /ongoing re-INVITE/.test((err as Error)?.message ?? '');
}

/**
 * The `sipDialog` actor of the sipSession chart: one INVITE dialog over a real sip.js user agent.
 * It turns sip.js callbacks into {@link SipDialogEvent}s and chart commands into SIP requests.
 * Stopping it ends the dialog on the wire (BYE, CANCEL or 480) if it is still up.
 */
export function sipDialogLogic(agent: SipUserAgent) {
  return fromCallback<SipDialogCommand, SipDialogInput>(({ input, sendBack, receive }) => {
    const send = (event: SipDialogEvent) => sendBack(event);
    const subscriptions: Subscription[] = [];
    let session: Session | undefined;
    let plan: MediaPlan | undefined;
    let hungUpLocally = false;
    let established = false;
    /** Our BYE is out: its answer, not sip.js's state, ends the dialog for the chart. */
    let byeSent = false;
    let deferred: ReturnType<typeof setTimeout> | undefined;
    // While our own re-INVITE is out, its plan is reported from onAccept, once sip.js has sent the ACK
    // and can take the next re-INVITE; reporting it earlier lets a quick UNMUTE hit "re-INVITE pending".
    let ownReinvite = false;
    // Callee: answered, the ACK of our 200 not yet in; a mute asked meanwhile waits for it.
    let awaitingAck = false;
    let pendingDirection: 'sendrecv' | 'sendonly' | undefined;

    const sdh = () => session?.sessionDescriptionHandler as RtpSessionDescriptionHandler | undefined;

    const attach = (s: Session) => {
      session = s;
      subscriptions.push(
        agent.plans(s).subscribe((next) => {
          plan = next;
          if (s.state === SessionState.Established && !ownReinvite) send({ type: 'SIP.MEDIA_UPDATED', plan: next });
        }),
      );
      s.stateChange.addListener((state) => {
        if (state === SessionState.Established) {
          established = true;
          if (plan) send({ type: 'SIP.ESTABLISHED', plan });
          else
            send({
              type: 'SIP.ERROR',
              problem: {
                code: 'NO_MEDIA_PLAN',
                message: 'the call was set up without an SDP exchange; the peer must offer or answer SDP',
              },
            });
        } else if (state === SessionState.Terminated) {
          // Our BYE's answer (or its absence) tells the chart, not sip.js, which ends the session as
          // soon as the BYE leaves.
          if (byeSent) return;
          const report = () => send({ type: 'SIP.TERMINATED', by: hungUpLocally ? 'local' : 'remote' });
          // sip.js ends an unanswered INVITE just before it reports the final response (a 487 to our
          // CANCEL, a 486, a 408 time-out): let that response, with its status, reach the chart first.
          if (s instanceof Inviter && !established) deferred = setTimeout(report, 0);
          else report();
        }
      });
    };

    const fail = (code: string, err: unknown) =>
      send({ type: 'SIP.ERROR', problem: { code, message: (err as Error)?.message ?? String(err) } });

    if (input.role === 'caller') {
      const target = input.target ? UserAgent.makeURI(input.target) : undefined;
      if (!target) {
        send({
          type: 'SIP.ERROR',
          problem: {
            code: 'BAD_TARGET',
            message: `cannot call ${JSON.stringify(input.target)}: give host[:port] or a sip: URI`,
          },
        });
      } else {
        agent.usePublicView(viewForPeer(input.publicView, target.host, input.localAddress));
        const inviter = new Inviter(agent.ua, target);
        attach(inviter);
        // Whether anything came back: sip.js reports Timer B's end as a 408 of its own making.
        let heard = false;
        inviter
          .invite({
            requestDelegate: {
              onTrying: () => {
                heard = true;
                send({ type: 'SIP.TRYING' });
              },
              onProgress: (response) => {
                heard = true;
                if (response.message.statusCode === 180 || response.message.statusCode === 183)
                  send({ type: 'SIP.RINGING' });
              },
              onReject: (response) => {
                const status = response.message.statusCode ?? 0;
                // sip.js's own 408 (user-agent-client.js onRequestTimeout) is an empty message: no Call-ID.
                const unanswered = !heard && status === 408 && !response.message.hasHeader('Call-ID');
                send({
                  type: 'SIP.REJECTED',
                  status,
                  reasonPhrase: response.message.reasonPhrase ?? '',
                  ...(unanswered ? { unanswered } : {}),
                });
              },
              // A 3xx: avchat calls peers directly and does not follow redirects; the call ends with the status.
              onRedirect: (response) =>
                send({
                  type: 'SIP.REJECTED',
                  status: response.message.statusCode ?? 0,
                  reasonPhrase: `${response.message.reasonPhrase ?? ''} (redirects are not followed)`,
                }),
            },
          })
          .catch((err) => fail('INVITE_FAILED', err));
      }
    } else {
      // Chosen per caller (a neighbour on our network gets our local address) as its INVITE arrives.
      agent.usePublicViewForIncoming(input.publicView, input.localAddress);
      subscriptions.push(
        agent.nextInvitation().subscribe((invitation: Invitation) => {
          attach(invitation);
          send({ type: 'SIP.INCOMING', from: invitation.remoteIdentity.uri.toString() });
        }),
      );
    }

    /** Change our audio direction by re-INVITE; the answer (or refusal) goes to the chart. */
    const reinvite = (s: Session, direction: 'sendrecv' | 'sendonly') => {
      const handler = sdh();
      if (!handler) return;
      const previous = handler.directions.audio;
      handler.setDirection('audio', direction);
      ownReinvite = true;
      s.invite({
        requestDelegate: {
          onAccept: () => {
            ownReinvite = false;
            if (plan) send({ type: 'SIP.MEDIA_UPDATED', plan });
          },
          onReject: (response) => {
            ownReinvite = false;
            handler.setDirection('audio', previous);
            send({ type: 'SIP.REINVITE_FAILED', status: response.message.statusCode ?? 0 });
          },
        },
      }).catch((err) => {
        // A re-INVITE sip.js refused to send leaves the call as it was. One refused for now — a
        // re-INVITE already in progress either way (RFC 3261 §14.1) — is glare seen locally:
        // reported as 491 so the chart backs off and tries again.
        ownReinvite = false;
        handler.setDirection('audio', previous);
        send({ type: 'SIP.REINVITE_FAILED', status: notNow(err) ? 491 : 0 });
      });
    };

    receive((command) => {
      const s = session;
      if (!s) return;
      switch (command.type) {
        case 'ANSWER':
          awaitingAck = true;
          s.delegate = {
            ...s.delegate,
            onAck: () => {
              awaitingAck = false;
              const direction = pendingDirection;
              pendingDirection = undefined;
              if (direction) reinvite(s, direction);
            },
          };
          (s as Invitation).accept().catch((err) => fail('ANSWER_FAILED', err));
          break;
        case 'REJECT':
          (s as Invitation).reject({ statusCode: command.status }).catch((err) => fail('REJECT_FAILED', err));
          break;
        case 'SET_AUDIO':
          // RFC 5407 §3.1.5: a callee that re-INVITEs before the ACK of its 200 makes the ACK meet an
          // open offer, and sip.js then ends the call; wait for the ACK.
          if (awaitingAck) pendingDirection = command.direction;
          else reinvite(s, command.direction);
          break;
        case 'HANGUP':
          hungUpLocally = true;
          if (s.state === SessionState.Established) {
            // RFC 3261 §15.1.1: the session is over when the BYE is answered (any final response) or
            // times out; the chart's own hang-up time-out covers a peer that is gone.
            byeSent = true;
            const over = () => send({ type: 'SIP.TERMINATED', by: 'local' });
            s.bye({ requestDelegate: { onAccept: over, onReject: over } }).catch((err) => fail('BYE_FAILED', err));
          } else if (s instanceof Inviter) s.cancel().catch((err) => fail('CANCEL_FAILED', err));
          else (s as Invitation).reject({ statusCode: 486 }).catch((err) => fail('REJECT_FAILED', err));
          break;
      }
    });

    return () => {
      clearTimeout(deferred);
      for (const sub of subscriptions) sub.unsubscribe();
      if (session && session.state !== SessionState.Terminated) {
        hungUpLocally = true;
        // sip.js's dispose ends the dialog as the state requires: BYE, CANCEL, or 480 to an unanswered INVITE.
        session.dispose().catch(() => {});
      }
    };
  });
}
