/** Transparent capture: the plan, its command-line form and the iptables rules it becomes. Pure. */
export { CaptureError, captureArgs, formatRedirect, formatReject, isIPv4, isIPv6, parseRedirect, parseReject, validatePlan, type CaptureErrorCode, type CapturePlan, type CaptureReject, type CaptureTarget } from './plan.ts';
export { CAPTURE_CHAIN, captureRules, hostsToResolve, sharedPorts, type CaptureRules } from './rules.ts';
