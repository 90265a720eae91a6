/** Reads the user's object scripts: every `*.lua` file directly in one directory, by name. */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { LuaSource } from "./lua-sources.ts";

export interface ScriptDirContents {
  readonly scripts: LuaSource[];
  readonly errors: string[];
}

export async function readScriptDir(dir: string): Promise<ScriptDirContents> {
  const scripts: LuaSource[] = [];
  const errors: string[] = [];
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith(".lua")).sort();
  } catch (e) {
    return { scripts, errors: [`${dir}: ${e instanceof Error ? e.message : String(e)}`] };
  }
  for (const name of names) {
    try {
      scripts.push({ name, code: await readFile(join(dir, name), "utf8") });
    } catch (e) {
      errors.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { scripts, errors };
}
