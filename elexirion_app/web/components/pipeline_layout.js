// Layout of the pipeline graph (pure functions, no React): dagre, top to bottom, one level at a
// time so groups become boxes sized to fit their children (React Flow sub-flows).
import { Graph, layout as dagreLayout } from "@dagrejs/dagre";
import { MarkerType } from "@xyflow/react";

export const STEP_W = 220;
export const STEP_H = 58;
export const PAD_X = 40; // room inside a group for the loop lane on the left
export const HEADER = 40;
export const PAD_BOTTOM = 24;

export const EDGE_STYLE = {
  order: { stroke: "#64748b", strokeWidth: 1.5 },
  data: { stroke: "#2563eb", strokeWidth: 1.5, strokeDasharray: "6 4" },
  loop: { stroke: "#9333ea", strokeWidth: 2, strokeDasharray: "3 3" },
};
// One marker object per kind (an edge object stays the same object while it is unchanged).
const MARKERS = Object.fromEntries(
  Object.entries(EDGE_STYLE).map(([kind, style]) => [
    kind,
    { type: MarkerType.ArrowClosed, color: style.stroke, width: 16, height: 16 },
  ]),
);

function hasXY(n) {
  return typeof n.x === "number" && typeof n.y === "number" && isFinite(n.x) && isFinite(n.y);
}

function indexTree(rawNodes) {
  const byId = new Map();
  for (const n of rawNodes || []) if (n && n.id != null) byId.set(String(n.id), n);
  const parentOf = (id) => {
    const p = byId.get(id)?.parent;
    return p && byId.has(String(p)) && String(p) !== id ? String(p) : "";
  };
  const children = new Map([["", []]]);
  for (const id of byId.keys()) {
    const p = parentOf(id);
    if (!children.has(p)) children.set(p, []);
    children.get(p).push(id);
  }
  const order = (id) => {
    const i = byId.get(id)?.index;
    return typeof i === "number" ? i : Number.MAX_SAFE_INTEGER;
  };
  for (const list of children.values()) list.sort((a, b) => order(a) - order(b));
  const ancestors = (id) => {
    const chain = [id];
    const seen = new Set(chain);
    for (let p = parentOf(id); p && !seen.has(p); p = parentOf(p)) {
      chain.push(p);
      seen.add(p);
    }
    chain.push("");
    return chain; // id, parent, ..., ""
  };
  return { byId, children, ancestors };
}

// Order edges drive the layout (data and loop edges are drawn in side lanes, not ranked): an
// edge between two levels is attached to the ancestors that are siblings where both meet.
function levelEdges(rawEdges, byId, ancestors) {
  const levels = new Map();
  for (const e of rawEdges || []) {
    if ((e.kind || "order") !== "order") continue;
    const s = String(e.source);
    const t = String(e.target);
    if (!byId.has(s) || !byId.has(t) || s === t) continue;
    const sa = ancestors(s);
    const ta = ancestors(t);
    const common = sa.find((a) => ta.includes(a) && a !== s && a !== t);
    if (common === undefined) continue;
    const sv = sa[sa.indexOf(common) - 1];
    const tv = ta[ta.indexOf(common) - 1];
    if (!sv || !tv || sv === tv) continue;
    if (!levels.has(common)) levels.set(common, new Map());
    levels.get(common).set(`${sv}\u0000${tv}`, [sv, tv]);
  }
  return levels;
}

function nodeData(raw, id) {
  return {
    step: raw.step ?? id,
    type: raw.type ?? "",
    label: raw.label ?? "",
    model: raw.model ?? "",
    icon: raw.icon ?? "",
  };
}

// Every node's place in the tree, independent of names: "3" is the fourth top-level step,
// "3/0" the first step inside it. A renamed step keeps its slot.
export function slotsOf(rawNodes) {
  const { children } = indexTree(rawNodes);
  const slots = new Map();
  const visit = (parent, prefix, depth) => {
    (children.get(parent) || []).forEach((id, i) => {
      const slot = prefix + i;
      slots.set(id, slot);
      if (depth < 64) visit(id, slot + "/", depth + 1);
    });
  };
  visit("", "", 0);
  return slots;
}

// What the layout depends on, in slots: a change of name, label, model or icon keeps every
// position (and so does not run dagre again).
export function structureKey(rawNodes, rawEdges, slots = slotsOf(rawNodes)) {
  const nodes = (rawNodes || [])
    .filter((n) => n && slots.has(String(n.id)))
    .map((n) => [slots.get(String(n.id)), Boolean(n.group), n.x, n.y]);
  nodes.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const edges = (rawEdges || [])
    .filter((e) => (e.kind || "order") === "order")
    .map((e) => [slots.get(String(e.source)) ?? "?", slots.get(String(e.target)) ?? "?"]);
  return JSON.stringify([nodes, edges]);
}

// A layout (layoutGraph's nodes, made for the slots `laidSlots`) given to the nodes of the
// same structure now: ids, parents and data from `rawNodes`, geometry from the layout.
export function placeLaid(laid, laidSlots, rawNodes, slots) {
  const idAt = new Map();
  for (const [id, slot] of slots) idAt.set(slot, id);
  const byId = new Map((rawNodes || []).map((n) => [String(n.id), n]));
  const out = [];
  for (const n of laid) {
    const id = idAt.get(laidSlots.get(n.id));
    if (id === undefined) continue;
    const node = { ...n, id, data: nodeData(byId.get(id) || {}, id) };
    if (n.parentId) node.parentId = idAt.get(laidSlots.get(n.parentId));
    out.push(node);
  }
  return out;
}

function sameData(a, b) {
  return (
    a.step === b.step &&
    a.type === b.type &&
    a.label === b.label &&
    a.model === b.model &&
    a.icon === b.icon
  );
}

// `next` with the objects of `prev` kept wherever a node did not change (React Flow and the
// memoised node components then skip it); `prev` itself when nothing changed.
export function mergeNodes(prev, next) {
  const byId = new Map(prev.map((n) => [n.id, n]));
  let same = prev.length === next.length;
  const out = next.map((n, i) => {
    const p = byId.get(n.id);
    const kept =
      p &&
      p.type === n.type &&
      p.parentId === n.parentId &&
      p.width === n.width &&
      p.height === n.height &&
      p.position.x === n.position.x &&
      p.position.y === n.position.y &&
      Boolean(p.selected) === Boolean(n.selected) &&
      sameData(p.data, n.data);
    if (kept) {
      if (prev[i] !== p) same = false;
      return p;
    }
    same = false;
    // Keep what React Flow measured, so a changed node does not wait for a new measure.
    return p && p.measured ? { ...n, measured: p.measured } : n;
  });
  return same ? prev : out;
}

const EDGE_KEYS = ["source", "target", "sourceHandle", "targetHandle", "type", "animated"];

export function mergeEdges(prev, next) {
  const byId = new Map(prev.map((e) => [e.id, e]));
  let same = prev.length === next.length;
  const out = next.map((e, i) => {
    const p = byId.get(e.id);
    const kept =
      p &&
      EDGE_KEYS.every((k) => p[k] === e[k]) &&
      p.data.kind === e.data.kind &&
      p.data.side === e.data.side &&
      p.data.lane === e.data.lane;
    if (kept) {
      if (prev[i] !== p) same = false;
      return p;
    }
    same = false;
    return e;
  });
  return same ? prev : out;
}

// React Flow nodes, parents before children, positions relative to the parent. Nodes with x/y
// keep them; groups grow to fit their children wherever they are.
export function layoutGraph(rawNodes, rawEdges) {
  const { byId, children, ancestors } = indexTree(rawNodes);
  const edgesAt = levelEdges(rawEdges, byId, ancestors);
  const isGroup = (id) => Boolean(byId.get(id)?.group) || (children.get(id) || []).length > 0;
  const size = new Map();
  const pos = new Map();

  const layoutLevel = (parent, depth) => {
    const kids = children.get(parent) || [];
    for (const k of kids) {
      if (isGroup(k) && depth < 64) layoutLevel(k, depth + 1);
      if (!size.has(k)) size.set(k, { w: STEP_W, h: STEP_H });
    }
    const g = new Graph();
    g.setGraph({ rankdir: "TB", nodesep: 36, ranksep: 44, marginx: 0, marginy: 0 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const k of kids) g.setNode(k, { width: size.get(k).w, height: size.get(k).h });
    for (const [a, b] of (edgesAt.get(parent) || new Map()).values()) g.setEdge(a, b);
    if (kids.length) dagreLayout(g);
    let minX = Infinity;
    let minY = Infinity;
    for (const k of kids) {
      const d = g.node(k);
      minX = Math.min(minX, d.x - size.get(k).w / 2);
      minY = Math.min(minY, d.y - size.get(k).h / 2);
    }
    const offX = parent ? PAD_X : 0;
    const offY = parent ? HEADER : 0;
    for (const k of kids) {
      const d = g.node(k);
      const s = size.get(k);
      const raw = byId.get(k);
      pos.set(
        k,
        hasXY(raw)
          ? { x: raw.x, y: raw.y }
          : { x: d.x - s.w / 2 - minX + offX, y: d.y - s.h / 2 - minY + offY },
      );
    }
    if (parent) {
      let w = STEP_W + 2 * PAD_X;
      let h = HEADER + STEP_H / 2 + PAD_BOTTOM;
      for (const k of kids) {
        w = Math.max(w, pos.get(k).x + size.get(k).w + PAD_X);
        h = Math.max(h, pos.get(k).y + size.get(k).h + PAD_BOTTOM);
      }
      size.set(parent, { w, h });
    }
  };
  layoutLevel("", 0);

  const out = [];
  const emit = (parent, depth) => {
    for (const id of children.get(parent) || []) {
      const raw = byId.get(id);
      const s = size.get(id) || { w: STEP_W, h: STEP_H };
      const group = isGroup(id);
      const node = {
        id,
        type: group ? "stepGroup" : "step",
        position: pos.get(id) || { x: 0, y: 0 },
        data: nodeData(raw, id),
        width: s.w,
        height: s.h,
        style: { width: s.w, height: s.h },
      };
      if (parent) {
        node.parentId = parent;
        node.extent = "parent";
      }
      out.push(node);
      if (group && depth < 64) emit(id, depth + 1);
    }
  };
  emit("", 0);
  return out;
}

// Data edges are animated (moving dashes) only while few enough of them are drawn: each
// animated edge repaints on every frame, and 200 of them kept the main thread busy.
export const MAX_ANIMATED = 24;

// Order edges run bottom → top; data edges in a lane on the right, loop edges on the left.
// On a graph with more than MAX_ANIMATED data edges only those touching `selected` move.
export function toFlowEdges(rawEdges, ids, selected = "") {
  const out = [];
  let lanes = 0;
  const dataEdges = (rawEdges || []).filter((e) => e.kind === "data").length;
  const animate = (s, t) => dataEdges <= MAX_ANIMATED || s === selected || t === selected;
  for (const e of rawEdges || []) {
    const source = String(e.source);
    const target = String(e.target);
    if (!ids.has(source) || !ids.has(target) || source === target) continue;
    const kind = EDGE_STYLE[e.kind] ? e.kind : "order";
    const style = EDGE_STYLE[kind];
    const side = kind === "data" ? "r" : kind === "loop" ? "l" : "";
    out.push({
      id: String(e.id ?? `${source}->${target}:${kind}`),
      source,
      target,
      sourceHandle: side ? `${side}-out` : "b",
      targetHandle: side ? `${side}-in` : "t",
      type: side ? "lane" : "smoothstep",
      animated: kind === "data" && animate(source, target),
      style,
      markerEnd: MARKERS[kind],
      data: { kind, side, lane: side ? lanes++ % 4 : 0 },
      className: `elx-edge-${kind}`,
    });
  }
  return out;
}

// The dragged node's place among its siblings, by the vertical order of their centres.
export function siblingIndex(dragged, all) {
  const parent = dragged.parentId || "";
  const centre = (n) => {
    const h = n.measured?.height ?? n.height ?? STEP_H;
    const w = n.measured?.width ?? n.width ?? STEP_W;
    return [n.position.y + h / 2, n.position.x + w / 2];
  };
  const [cy, cx] = centre(dragged);
  let index = 0;
  for (const n of all) {
    if (n.id === dragged.id || (n.parentId || "") !== parent) continue;
    const [y, x] = centre(n);
    if (y < cy || (y === cy && x < cx)) index += 1;
  }
  return index;
}
