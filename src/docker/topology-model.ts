/**
 * The Docker topology model is shared (src/topology-model.ts: the store keeps it, the app and target selection read
 * it); the Docker adapter's modules import it from here.
 */
export * from '../topology-model.ts';
