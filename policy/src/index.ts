export { PolicyError, type PolicyErrorCode } from './errors.ts';
export { classifySql, lexingSetting, loadSqlParser, settingClass, type StatementInfo } from './sql/classify.ts';
export { compileBundle, parseDuration, type ApprovalSettings, type BundleOptions, type CompiledRule, type PolicyBundle } from './bundle.ts';
export { SqlDecider, decideShell, decideStatements, type Decision } from './decide.ts';
export { selectorMatches, type LabelSelector } from './selector.ts';
export { analyzeShell, analyzeShellSync, loadShellParser, type ShellAnalysis, type SimpleCommand } from './shell/analyze.ts';
export { compileGlob } from './shell/glob.ts';
export { compileMasker, type ColumnMasker, type Masker, type MaskResult, type MaskRuleSpec } from './mask/masker.ts';
export type { StreamMasker } from './mask/stream.ts';
