import type { DiagnosticReport, Observation, ServiceRequest } from '@medplum/fhirtypes';

/**
 * HL7 v2 status tables and the FHIR statuses they become, after the HL7 v2-to-FHIR mapping guide's
 * concept maps. Every code of each table is listed, so that an unknown code is a sender's error worth a
 * warning, not a gap of ours.
 */

/** Table 0123 (OBR-25 result status) to DiagnosticReport.status. */
export const REPORT_STATUS: Record<string, DiagnosticReport['status']> = {
  O: 'registered', // order received; specimen not yet received
  I: 'registered', // no results available; specimen received, procedure incomplete
  S: 'registered', // procedure scheduled, not done
  A: 'partial', // some, not all, results available
  P: 'preliminary',
  R: 'partial', // results stored, not yet verified
  N: 'partial', // procedure completed, results pending
  C: 'corrected', // correction to results
  M: 'amended', // corrected, not final (v2.7+)
  F: 'final',
  X: 'cancelled', // no results available; order cancelled
  Y: 'unknown', // no order on record for this test (answer to a query)
  Z: 'unknown', // no record of this patient (answer to a query)
};

/** Table 0085 (OBX-11 observation result status) to Observation.status. */
export const OBSERVATION_STATUS: Record<string, Observation['status']> = {
  C: 'corrected', // replaces a final result
  D: 'entered-in-error', // deletes the OBX record
  F: 'final',
  I: 'registered', // specimen in lab, results pending
  N: 'cancelled', // not asked: the observation was not sought (dataAbsentReason not-asked)
  O: 'registered', // order detail description only, no result
  P: 'preliminary',
  R: 'preliminary', // entered, not verified
  S: 'preliminary', // partial results
  U: 'final', // status changed to final without retransmitting the results
  W: 'entered-in-error', // post original as wrong
  X: 'cancelled', // results cannot be obtained
  A: 'amended', // amended based on adjustments (v2.6+)
  B: 'amended', // appended report (v2.6+)
};

/** Table 0119 (ORC-1 order control) to ServiceRequest.status; SC (status changed) reads ORC-5 instead. */
export const ORDER_CONTROL_STATUS: Record<string, ServiceRequest['status'] | 'from-order-status'> = {
  NW: 'active', // new order
  OK: 'active', // order accepted
  SN: 'active', // send order number
  NA: 'active', // number assigned
  PA: 'active', // parent order
  CH: 'active', // child order
  RE: 'active', // observations to follow
  RL: 'active', // release previous hold
  OR: 'active', // released as requested
  XO: 'active', // change order
  XX: 'active', // order changed, unsolicited
  XR: 'active', // changed as requested
  RP: 'active', // order replace request
  RU: 'active', // replaced unsolicited
  RO: 'active', // replacement order
  RR: 'active', // replaced as requested
  HD: 'on-hold', // hold order request
  OH: 'on-hold', // order held
  HR: 'on-hold', // on hold as requested
  CA: 'revoked', // cancel order request
  OC: 'revoked', // order cancelled
  CR: 'revoked', // cancelled as requested
  OD: 'revoked', // order discontinued
  DC: 'revoked', // discontinue order request
  DR: 'revoked', // discontinued as requested
  UA: 'entered-in-error', // unable to accept order
  SC: 'from-order-status', // status changed
  SS: 'from-order-status', // send order status request
  SR: 'from-order-status', // status request
};

/** Table 0038 (ORC-5 order status) to ServiceRequest.status. */
export const ORDER_STATUS: Record<string, ServiceRequest['status']> = {
  A: 'active', // some, not all, results available
  CA: 'revoked', // order cancelled
  CM: 'completed', // order completed
  DC: 'revoked', // order discontinued
  ER: 'entered-in-error', // error, order not found
  HD: 'on-hold',
  IP: 'active', // in process, unspecified
  RP: 'revoked', // order has been replaced
  SC: 'active', // in process, scheduled
};

/** Where a report of this status leaves the order it answers. */
export function orderStatusAfterReport(status: DiagnosticReport['status']): ServiceRequest['status'] {
  if (status === 'final' || status === 'corrected' || status === 'amended' || status === 'appended') return 'completed';
  if (status === 'cancelled') return 'revoked';
  return 'active';
}

/** Table 0027 priority (ORC-7.6, TQ1-9, OBR-27.6) to ServiceRequest.priority. */
export const PRIORITY: Record<string, ServiceRequest['priority']> = {
  S: 'stat', A: 'asap', R: 'routine', P: 'urgent', C: 'urgent', T: 'urgent', PRN: 'routine',
};
