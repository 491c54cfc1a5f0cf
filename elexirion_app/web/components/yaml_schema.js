// JSON Schema completion and hover for the YAML editor (codemirror-json-schema), kept cheap on
// long pipelines. Imported by yaml_editor.jsx from the same folder (rx.asset(shared=True)).
//
// The library re-reads the whole document and re-compiles the schema on every query: on a
// 200-step pipeline one completion took 0.7-1.2 s of main thread right after each keystroke
// (measured with the Chrome profiler), which delayed the debounced send and froze typing.
// Here:
// - the schema is compiled once (json-schema-library's compile marks its result and returns a
//   compiled schema as it is, so every `new Draft07(compiled)` the library makes is free), and
//   the lax copy the library builds for its second pass is made and compiled once too;
// - a query runs on a window of the document: every long block list (`steps:`, a loop's
//   `steps:` ...) keeps only the item the cursor is in (or the one just before it), so the
//   library parses and walks one step instead of 200. What an item may hold does not depend
//   on its siblings, so completions and hover texts are the same; positions are mapped back.

import { EditorState } from "@codemirror/state";
import { CompletionContext } from "@codemirror/autocomplete";
import { ensureSyntaxTree, syntaxTree } from "@codemirror/language";
import { yaml } from "@codemirror/lang-yaml";

// Lists with at most this many items are left whole (small documents are queried as they are).
export const WINDOW_MIN_ITEMS = 8;
const TREE_BUDGET_MS = 30;
const YAML_SUPPORT = yaml();
const WARM_UP = "workflow:\n  name: warm\n  steps:\n    - name: a\n      type: claude\n      mo";

// The document's block-list items as [from, to] (from the dash to the end of the item).
function listItems(seq) {
  const items = [];
  for (let c = seq.firstChild; c; c = c.nextSibling) {
    if (c.name === "-") items.push([c.from, c.to]);
    else if (c.name === "Item" && items.length) items[items.length - 1][1] = c.to;
  }
  return items;
}

// Ranges to cut so that every long list keeps one item: the last one starting at or before
// `pos` (the item the cursor is in, or the one it follows), else the first one. `pos` is never
// inside a cut.
export function windowCuts(tree, pos) {
  const cuts = [];
  const visit = (node) => {
    for (let c = node.firstChild; c; c = c.nextSibling) {
      if (c.name !== "BlockSequence") {
        visit(c);
        continue;
      }
      const items = listItems(c);
      if (items.length <= WINDOW_MIN_ITEMS) {
        visit(c);
        continue;
      }
      let k = 0;
      for (let i = 0; i < items.length && items[i][0] <= pos; i++) k = i;
      if (k > 0) cuts.push([items[0][0], items[k][0]]);
      if (k < items.length - 1) cuts.push([items[k + 1][0], items[items.length - 1][1]]);
      // Only the kept item is looked into (its own long lists are cut the same way).
      const [keepFrom, keepTo] = items[k];
      for (let d = c.firstChild; d; d = d.nextSibling) {
        if (d.name === "Item" && d.from >= keepFrom && d.to <= keepTo) visit(d);
      }
    }
  };
  visit(tree.topNode);
  return cuts.sort((a, b) => a[0] - b[0]);
}

export function toWindow(cuts, pos) {
  let out = pos;
  for (const [from, to] of cuts) {
    if (to <= pos) out -= to - from;
    else break;
  }
  return out;
}

export function fromWindow(cuts, pos) {
  let shift = 0;
  for (const [from, to] of cuts) {
    if (pos + shift >= from) shift += to - from;
    else break;
  }
  return pos + shift;
}

export function windowText(text, cuts) {
  let out = "";
  let at = 0;
  for (const [from, to] of cuts) {
    out += text.slice(at, from);
    at = to;
  }
  return out + text.slice(at);
}

const CLOSING_KEYS = new Set(["additionalProperties", "unevaluatedProperties", "unevaluatedItems"]);

// Removes `required` and closed `additionalProperties` everywhere, as the library's own lax
// schema does (its second pass, for documents that do not validate yet).
function laxOf(node) {
  if (Array.isArray(node)) return node.map(laxOf);
  if (!node || typeof node !== "object") return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "required" && Array.isArray(value)) continue;
    if (value === false && CLOSING_KEYS.has(key)) continue;
    out[key] = laxOf(value);
  }
  return out;
}

// pydantic's `discriminator` (a tagged union: `type: claude` picks ClaudeStep) spelled as
// json-schema-library's `oneOfProperty`, so it picks the alternative by its tag instead of
// validating the data against every step type (most of a query's time without it).
export function withOneOfProperty(node) {
  if (Array.isArray(node)) return node.map(withOneOfProperty);
  if (!node || typeof node !== "object") return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) out[key] = withOneOfProperty(value);
  const tag = node.discriminator && node.discriminator.propertyName;
  if (Array.isArray(node.oneOf) && typeof tag === "string" && out.oneOfProperty === undefined) {
    out.oneOfProperty = tag;
  }
  return out;
}

// {complete, hover, schema}: the completion source, the hover source and the compiled schema
// to put in the editor's state (core.stateExtensions(schema)).
export function schemaFeatures(core, forYaml, library, rawSchema) {
  const compile = (s) => new library.Draft07(s).rootSchema;
  const schema = compile(withOneOfProperty(rawSchema));
  let lax = null;
  const laxSchema = () => (lax = lax || compile(laxOf(schema)));

  // The library's doComplete without its per-query schema copies (our schema's root is an
  // object schema, not a $ref, so the library's root expansion is the schema itself).
  class CompiledCompletion extends core.JSONCompletion {
    doComplete(ctx) {
      if (!core.getJSONSchema(ctx.state)) return [];
      const first = this.doCompleteForSchema(ctx, schema);
      if (first.options.length) return first;
      return this.doCompleteForSchema(ctx, laxSchema());
    }
  }
  const completion = new CompiledCompletion({ mode: "yaml" });
  const hover = forYaml.yamlSchemaHover();

  const windowOf = (state, pos) => {
    const tree = ensureSyntaxTree(state, state.doc.length, TREE_BUDGET_MS) || syntaxTree(state);
    const cuts = windowCuts(tree, pos);
    if (!cuts.length) return null;
    const doc = windowText(state.doc.toString(), cuts);
    const extensions = [YAML_SUPPORT, core.stateExtensions(schema)];
    return { state: EditorState.create({ doc, extensions }), cuts };
  };

  const complete = (ctx) => {
    const w = windowOf(ctx.state, ctx.pos);
    if (!w) return completion.doComplete(ctx);
    const sub = new CompletionContext(w.state, toWindow(w.cuts, ctx.pos), ctx.explicit);
    const result = completion.doComplete(sub);
    if (!result || !Array.isArray(result.options) || !result.options.length) return null;
    const back = { ...result, from: fromWindow(w.cuts, result.from) };
    if (typeof result.to === "number") back.to = fromWindow(w.cuts, result.to);
    return back;
  };

  const hoverAt = async (view, pos, side) => {
    const w = windowOf(view.state, pos);
    if (!w) return hover(view, pos, side);
    const tip = await hover({ state: w.state }, toWindow(w.cuts, pos), side);
    if (!tip) return null;
    const back = { ...tip, pos: fromWindow(w.cuts, tip.pos) };
    if (typeof tip.end === "number") back.end = fromWindow(w.cuts, tip.end);
    return back;
  };

  // The lax copy is needed by most queries: compile it, and run one query on a small text so
  // the code paths are warm, while the page is idle rather than on the first keystroke.
  if (typeof requestIdleCallback === "function") {
    requestIdleCallback(
      () => {
        laxSchema();
        const state = EditorState.create({
          doc: WARM_UP,
          extensions: [YAML_SUPPORT, core.stateExtensions(schema)],
        });
        complete(new CompletionContext(state, WARM_UP.length, false));
      },
      { timeout: 5000 },
    );
  }

  return { complete, hover: hoverAt, schema };
}
