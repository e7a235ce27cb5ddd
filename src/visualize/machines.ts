import type { AnyStateMachine } from 'xstate';
import { callMachine } from '../../machines/call.ts';
import { mediaMachine } from '../../machines/media.ts';
import { natProbeMachine } from '../../machines/natProbe.ts';
import { portMappingMachine } from '../../machines/portMapping.ts';
import { portProbeMachine } from '../../machines/portProbe.ts';
import { sipSessionMachine } from '../../machines/sipSession.ts';

/** Every statechart of a call, by the file name its diagram gets in visualizations/. */
export const MACHINES: Readonly<Record<string, AnyStateMachine>> = {
  call: callMachine,
  natProbe: natProbeMachine,
  portProbe: portProbeMachine,
  portMapping: portMappingMachine,
  sipSession: sipSessionMachine,
  media: mediaMachine,
};
