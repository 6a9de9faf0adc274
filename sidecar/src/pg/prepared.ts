/**
 * What the extended protocol's names stand for, as the sidecar knows them: prepared statements
 * (decided at Parse) and portals (bound to a statement), plus SQL cursors known to run no code
 * the sidecar cannot see. A name whose meaning SQL may have changed (PREPARE, DEALLOCATE,
 * DECLARE, CLOSE, DISCARD, opaque code) is forgotten, so it is handled like a name made with
 * SQL. A Parse or Bind that failed (or was skipped) is undone. Pure.
 */
import { classifySql, type Decision } from '@airlock/policy';
import type { Described } from './described.ts';
import { NAME_WORDS, nameEffects, type NameEffect } from './names.ts';

export interface Prepared {
  readonly sql: string;
  readonly decision: Decision;
  /** the decision recorded for each Execute (Allow: it was decided, and approved, at Parse) */
  executeDecision?: Decision;
  /** the text as recorded (masked), made at the first Execute */
  recordedText?: string;
  /** held at Parse and approved */
  readonly approved: boolean;
  /** result columns from a Describe of the statement (text format); null: returns no rows */
  fields?: Described | null;
}

export interface Portal {
  readonly statementName: string;
  readonly statement: Prepared | undefined;
  readonly resultFormats: readonly number[];
  /** result columns from a Describe of the portal (actual formats); null: returns no rows */
  fields: Described | null | undefined;
  /** a Describe of this portal is on its way: its answer gives the columns before any row */
  describing: boolean;
}

/** A Parse in flight: what it made the name stand for (`set`; undefined: nothing) and what it stood for before. */
export interface ParseUndo {
  readonly name: string | undefined;
  readonly previous: Prepared | undefined;
  readonly set?: Prepared | undefined;
}

/** A Bind in flight: the portal it made and the one it replaced. */
export interface BindUndo {
  readonly name?: string;
  readonly portal?: Portal;
  readonly previous?: Portal | undefined;
}

/** Code the sidecar cannot see ran: every name may have changed. */
const EVERY_NAME: readonly NameEffect[] = [
  { kind: 'statement', name: null },
  { kind: 'portal', name: null },
];
const OPAQUE_DECISION: Decision = { decision: 'Allow', classes: ['opaque'], rules: [], message: '' };

export class ProtocolNames {
  readonly statements = new Map<string, Prepared>();
  readonly portals = new Map<string, Portal>();
  /** SQL cursors declared over queries that run no code the sidecar cannot see (fetching them changes no names) */
  readonly #plainCursors = new Set<string>();

  /**
   * SQL that may have dropped or redefined what protocol names stand for (names.ts): what the
   * sidecar knew of them is forgotten, so they are handled as names made with SQL.
   */
  changedBy(sql: string, d: Decision): void {
    let effects: readonly NameEffect[];
    if (d.classes.includes('opaque')) effects = EVERY_NAME;
    else if (!NAME_WORDS.test(sql)) return;
    else effects = nameEffects(classifySql(sql));
    for (const e of effects) {
      switch (e.kind) {
        case 'statement':
          if (e.name !== null) this.statements.delete(e.name);
          else for (const name of [...this.statements.keys()]) if (name !== '') this.statements.delete(name);
          break;
        case 'portal':
          if (e.name !== null) {
            this.portals.delete(e.name);
            this.#plainCursors.delete(e.name);
          } else {
            this.portals.clear();
            this.#plainCursors.clear();
          }
          break;
        case 'declare':
          this.portals.delete(e.name);
          this.#plainCursors.add(e.name);
          break;
        case 'fetch':
          // the cursor's query runs on: code in it may change any name
          if (e.name === null || !this.#plainCursors.has(e.name)) this.changedBy('', OPAQUE_DECISION);
          break;
      }
    }
  }

  /**
   * A Parse that failed (or was skipped) made nothing: its name stands for what it stood for
   * before (a failed Parse of the unnamed statement has dropped the previous one), unless a
   * later message has redefined the name since.
   */
  undoParse(e: ParseUndo, skipped: boolean): void {
    if (e.name === undefined || this.statements.get(e.name) !== e.set) return;
    if (e.previous !== undefined && (skipped || e.name !== '')) this.statements.set(e.name, e.previous);
    else this.statements.delete(e.name);
  }

  /** The same for a Bind: a failed one may have dropped the unnamed portal, so that name is forgotten. */
  undoBind(e: BindUndo, skipped: boolean): void {
    if (e.name === undefined || this.portals.get(e.name) !== e.portal) return;
    if (e.previous !== undefined && (skipped || e.name !== '')) this.portals.set(e.name, e.previous);
    else this.portals.delete(e.name);
  }
}
