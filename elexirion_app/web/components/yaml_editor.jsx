// The YAML editor: CodeMirror 6 through @uiw/react-codemirror, lint markers from server-side
// diagnostics, JSON Schema completion/hover (codemirror-json-schema, loaded on demand, run on a
// window of the document: yaml_schema.js). Wrapped by yaml_editor.py (YamlEditor); shipped with
// rx.asset(shared=True).
//
// Props:
//   value        the text shown on mount and whenever `revision` changes
//   revision     bump it (with `value`) for a server-side edit; echoes of the user's own typing
//                arrive with the same revision and are ignored, so the cursor never jumps
//   diagnostics  [{line (1-based), severity: error|warning|info, message}]
//   schema       a JSON Schema (object) for completion and hover, or null
//   onChange(text)  the full text, debounced (`debounceMs`, 250 by default), flushed on blur
import React, { useCallback, useEffect, useMemo, useRef, useState } from "react";
import CodeMirror from "@uiw/react-codemirror";
import { Annotation } from "@codemirror/state";
import { EditorView, hoverTooltip } from "@codemirror/view";
import { yaml, yamlLanguage } from "@codemirror/lang-yaml";
import { linter, lintGutter, setDiagnostics } from "@codemirror/lint";
import { schemaFeatures } from "./yaml_schema.js";

const remoteEdit = Annotation.define();

const THEME = EditorView.theme({
  "&": { height: "100%", fontSize: "13px" },
  ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" },
});

const SETUP = { lineNumbers: true, foldGutter: true, highlightActiveLine: true };

// One change from the common prefix to the common suffix, so the cursor and the undo history
// outside the edited region stay where they are.
function minimalChange(oldText, newText) {
  let start = 0;
  const max = Math.min(oldText.length, newText.length);
  while (start < max && oldText.charCodeAt(start) === newText.charCodeAt(start)) start++;
  let endOld = oldText.length;
  let endNew = newText.length;
  while (
    endOld > start &&
    endNew > start &&
    oldText.charCodeAt(endOld - 1) === newText.charCodeAt(endNew - 1)
  ) {
    endOld--;
    endNew--;
  }
  return { from: start, to: endOld, insert: newText.slice(start, endNew) };
}

function toCodeMirror(doc, diagnostics) {
  const out = [];
  for (const d of diagnostics || []) {
    if (!d) continue;
    const n = Math.min(Math.max(1, Math.floor(Number(d.line) || 1)), doc.lines);
    const line = doc.line(n);
    const severity = d.severity === "warning" || d.severity === "info" ? d.severity : "error";
    out.push({ from: line.from, to: line.to, severity, message: String(d.message ?? "") });
  }
  return out;
}

export function YamlEditor(props) {
  const { id, className, style, value, revision, diagnostics, schema } = props;
  const debounceMs = typeof props.debounceMs === "number" ? props.debounceMs : 250;
  const [view, setView] = useState(null);
  const [initial] = useState(() => (typeof value === "string" ? value : ""));
  const onChangeRef = useRef(props.onChange);
  onChangeRef.current = props.onChange;
  const valueRef = useRef(value);
  valueRef.current = value;
  const timer = useRef(null);
  const pending = useRef(false);
  const viewRef = useRef(null);
  viewRef.current = view;

  const flush = useCallback(() => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = null;
    if (!pending.current || !viewRef.current) return;
    pending.current = false;
    onChangeRef.current?.(viewRef.current.state.doc.toString());
  }, []);

  const listener = useMemo(
    () =>
      EditorView.updateListener.of((update) => {
        if (!update.docChanged) return;
        if (update.transactions.every((tr) => tr.annotation(remoteEdit))) return;
        pending.current = true;
        if (timer.current) clearTimeout(timer.current);
        timer.current = setTimeout(flush, debounceMs);
      }),
    [flush, debounceMs],
  );

  // Schema features are loaded only when a schema is given (they pull in a markdown renderer).
  const [schemaExt, setSchemaExt] = useState(null);
  const schemaKey = useMemo(() => (schema ? JSON.stringify(schema) : ""), [schema]);
  useEffect(() => {
    if (!schemaKey) {
      setSchemaExt(null);
      return undefined;
    }
    let cancelled = false;
    Promise.all([
      import("codemirror-json-schema"),
      import("codemirror-json-schema/yaml"),
      import("json-schema-library"),
    ])
      .then(([core, forYaml, library]) => {
        if (cancelled) return;
        // Completion and hover only: its linter would overwrite the server's diagnostics.
        const features = schemaFeatures(core, forYaml, library, JSON.parse(schemaKey));
        setSchemaExt([
          yamlLanguage.data.of({ autocomplete: features.complete }),
          hoverTooltip(features.hover),
          core.stateExtensions(features.schema),
        ]);
      })
      .catch((err) => console.error("yaml editor: schema features unavailable", err));
    return () => {
      cancelled = true;
    };
  }, [schemaKey]);

  const extensions = useMemo(
    () => [yaml(), linter(null), lintGutter(), THEME, listener, ...(schemaExt ? [schemaExt] : [])],
    [listener, schemaExt],
  );

  // Server-side edits: replace the document when the revision changes (not on echoes).
  const shownRevision = useRef(revision);
  useEffect(() => {
    if (!view || revision === shownRevision.current) return;
    shownRevision.current = revision;
    const next = typeof valueRef.current === "string" ? valueRef.current : "";
    const current = view.state.doc.toString();
    if (timer.current) clearTimeout(timer.current);
    timer.current = null;
    pending.current = false;
    if (next === current) return;
    view.dispatch({
      changes: minimalChange(current, next),
      annotations: remoteEdit.of(true),
    });
  }, [view, revision]);

  const diagnosticsKey = useMemo(() => JSON.stringify(diagnostics || []), [diagnostics]);
  useEffect(() => {
    if (!view) return;
    const list = toCodeMirror(view.state.doc, JSON.parse(diagnosticsKey));
    view.dispatch(setDiagnostics(view.state, list));
  }, [view, diagnosticsKey, revision]);

  useEffect(() => () => flush(), [flush]);

  const onCreateEditor = useCallback((v) => setView(v), []);

  return (
    <div
      id={id || "yaml-editor"}
      className={["elx-yaml-editor", className].filter(Boolean).join(" ")}
      style={{ height: "100%", minHeight: 160, overflow: "hidden", ...style }}
      data-revision={revision == null ? undefined : String(revision)}
      onBlur={flush}
    >
      <CodeMirror
        value={initial}
        height="100%"
        style={{ height: "100%" }}
        basicSetup={SETUP}
        extensions={extensions}
        onCreateEditor={onCreateEditor}
        editable={props.readOnly ? false : true}
        readOnly={Boolean(props.readOnly)}
      />
    </div>
  );
}

export default YamlEditor;
