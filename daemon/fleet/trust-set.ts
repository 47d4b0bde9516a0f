/**
 * The keys whose signatures this device accepts: those of the configuration (fleet.trust: PEM files or PEM text),
 * then the changes signed trust-keys commands made (persisted in AgentState, so a rotation survives restarts and
 * outranks the configuration that was there before it).
 */
import { isPemText } from '../config/load.ts';
import { EdgerunError } from '../errors.ts';
import type { AgentState } from './agent-state.ts';
import { parsePublicKey, readPublicKey, type TrustedKey } from './signing.ts';

export class TrustSet {
  private readonly byId = new Map<string, TrustedKey>();

  private constructor(private readonly state: AgentState) {}

  static async load(entries: readonly string[], state: AgentState): Promise<TrustSet> {
    const set = new TrustSet(state);
    for (const [i, entry] of entries.entries()) {
      const key = isPemText(entry) ? parsePublicKey(entry, `fleet.trust[${i}]`) : await readPublicKey(entry);
      set.byId.set(key.keyId, key);
    }
    for (const change of state.trustChanges()) {
      if (change.removed) set.byId.delete(change.keyId);
      else if (change.pem) set.byId.set(change.keyId, parsePublicKey(change.pem, `trust-keys command (key ${change.keyId})`));
    }
    return set;
  }

  keys(): TrustedKey[] {
    return [...this.byId.values()];
  }

  /** Applies a verified trust-keys command; a change that would leave no trusted key is refused. */
  apply(add: readonly string[], remove: readonly string[], commandId: string): { added: string[]; removed: string[] } {
    const added = add.map((pem, i) => ({ key: parsePublicKey(pem, `trust-keys command ${commandId} add[${i}]`), pem }));
    const after = new Map(this.byId);
    for (const { key } of added) after.set(key.keyId, key);
    for (const keyId of remove) after.delete(keyId);
    if (after.size === 0) {
      throw new EdgerunError('EDGERUN_ERR_FLEET_REJECTED', `trust-keys command ${commandId} would leave this device trusting no key`, { commandId });
    }
    this.state.changeTrust(added.map(({ key, pem }) => ({ keyId: key.keyId, pem })), [...remove]);
    this.byId.clear();
    for (const [keyId, key] of after) this.byId.set(keyId, key);
    return { added: added.map(({ key }) => key.keyId), removed: [...remove] };
  }
}
