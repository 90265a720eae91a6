/**
 * Which item leaves when memory is needed. The store tells the policy about every item that
 * enters, is hit or leaves, and asks it for the next victim.
 */
import type { Arena } from "./arena.ts";
import { createGdsfMemory, GdsfHeap, type GdsfMemory } from "./gdsf.ts";
import { createLruMemory, LruList, type LruMemory } from "./lru.ts";

export interface EvictionPolicy {
  readonly length: number;
  /** An item enters the cache (or comes back after being held out of eviction's reach). */
  insert(item: number, bytes: number): void;
  /** An item leaves: deleted, replaced, expired or evicted. */
  remove(item: number): void;
  /** A read hit. */
  touch(item: number): void;
  /** Whether a hit would change nothing (then a read needs no lock). Reads only; may race with writers. */
  recentlyUsed(item: number): boolean;
  /** The item to evict next (0 when empty); the store evicts it right away. */
  victim(): number;
  clear(): void;
  /** Calls fn for every item the policy holds (invariant checks). */
  forEach(fn: (item: number) => void): void;
  /**
   * Calls fn for every item, the next victim first and the last one to go last (LRU: tail to
   * head; GDSF: heap order, each item before its heap children). fn must not change the policy.
   */
  forEachOldestFirst(fn: (item: number) => void): void;
}

export const EVICTION_POLICIES = ["lru", "gdsf"] as const;
export type EvictionName = (typeof EVICTION_POLICIES)[number];

/** A policy's shared state, by policy. */
export type PolicyMemory = LruMemory | GdsfMemory;

export function createPolicyMemory(name: EvictionName, totalUnits: number): PolicyMemory {
  return name === "gdsf" ? createGdsfMemory(totalUnits) : createLruMemory();
}

/** Attaches the policy whose shared state is `memory`. */
export function attachPolicy(memory: PolicyMemory, arena: Arena): EvictionPolicy {
  return memory.kind === "gdsf" ? new GdsfHeap(arena, memory) : new LruList(arena, memory);
}
