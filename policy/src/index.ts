export { PolicyError, type PolicyErrorCode } from './errors.ts';
export { classifySql, loadSqlParser, type StatementInfo } from './sql/classify.ts';
