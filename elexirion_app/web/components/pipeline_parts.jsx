// Node and edge components of the pipeline graph (registered once, at module level).
import React, { createContext, memo, useCallback, useContext, useSyncExternalStore } from "react";
import { BaseEdge, Handle, Position, useStore } from "@xyflow/react";
import {
  Bot,
  Braces,
  Brain,
  Circle,
  Columns3,
  FileText,
  Funnel,
  Folder,
  GitBranch,
  Layers,
  Magnet,
  MessagesSquare,
  Package,
  Puzzle,
  RefreshCw,
  Repeat,
  Search,
  Shuffle,
  ShieldCheck,
  Sparkles,
  Variable,
} from "lucide-react";
import { HEADER, STEP_H, STEP_W } from "./pipeline_layout.js";

const ICONS = {
  claude: Bot,
  claude_smart: Brain,
  claude_session: MessagesSquare,
  claude_continue: MessagesSquare,
  claude_extract: Magnet,
  claude_batch: Layers,
  claude_robust: ShieldCheck,
  parallel_claude: Columns3,
  parallel: Columns3,
  gemini: Sparkles,
  gemini_instructor: Puzzle,
  for_loop: Repeat,
  loop: Repeat,
  while_loop: RefreshCw,
  pipeline: Package,
  switch: GitBranch,
  condition: GitBranch,
  set_variable: Variable,
  data_transform: Shuffle,
  filter: Funnel,
  file_ops: Folder,
  file: FileText,
  codebase_query: Search,
  static: Braces,
};

const STATUS_LOOK = {
  idle: { border: "#cbd5e1", bg: "#ffffff", dot: "#cbd5e1" },
  queued: { border: "#f59e0b", bg: "#fffbeb", dot: "#f59e0b" },
  running: { border: "#3b82f6", bg: "#eff6ff", dot: "#3b82f6" },
  succeeded: { border: "#22c55e", bg: "#f0fdf4", dot: "#22c55e" },
  failed: { border: "#ef4444", bg: "#fef2f2", dot: "#ef4444" },
  skipped: { border: "#94a3b8", bg: "#f8fafc", dot: "#94a3b8" },
};

export const CSS = `
.elx-node { box-sizing: border-box; width: ${STEP_W}px; height: ${STEP_H}px; display: flex;
  align-items: center; gap: 8px; padding: 6px 10px; border: 2px solid; border-radius: 8px;
  font-size: 13px; line-height: 1.25; color: #0f172a; box-shadow: 0 1px 2px rgba(15,23,42,.08); }
.elx-group { box-sizing: border-box; width: 100%; height: 100%; border: 2px dashed;
  border-radius: 12px; color: #0f172a; }
.elx-group-header { display: flex; align-items: center; gap: 8px; height: ${HEADER - 8}px;
  padding: 0 10px; font-size: 13px; }
.elx-group-header .elx-text { flex: 0 1 auto; }
.elx-icon { width: 18px; height: 18px; flex: none; color: #475569; }
.elx-glyph { width: 18px; flex: none; text-align: center; font-size: 15px; }
.elx-text { min-width: 0; flex: 1; }
.elx-name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.elx-model { font-size: 11px; color: #64748b; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.elx-dot { width: 10px; height: 10px; border-radius: 50%; flex: none; }
[data-status="running"] > .elx-dot, [data-status="running"] .elx-group-header > .elx-dot {
  animation: elx-pulse 1s ease-in-out infinite; }
.elx-node[data-status="skipped"], .elx-group[data-status="skipped"] { opacity: .6;
  border-style: dashed; }
.elx-problem { outline: 2px solid #dc2626; outline-offset: 2px; }
.elx-warn { color: #dc2626; font-size: 14px; flex: none; }
.elx-selected { box-shadow: 0 0 0 3px rgba(79,70,229,.45); }
.elx-side-handle { opacity: 0; pointer-events: none; }
@keyframes elx-pulse { 0%, 100% { opacity: 1; } 50% { opacity: .25; } }
`;

// Statuses, problems and the selection, read by each node for its own id: a node re-renders
// only when its own look changes (a new problems map does not re-render 200 nodes).
export function createLookStore() {
  let look = { statuses: {}, problems: {}, selected: "" };
  const listeners = new Set();
  return {
    get: () => look,
    set(next) {
      look = next;
      for (const listener of listeners) listener();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export const GraphContext = createContext(createLookStore());

function TypeIcon({ data }) {
  const key = data.icon || data.type || "";
  const Icon = ICONS[key];
  if (Icon) return <Icon className="elx-icon" aria-hidden="true" />;
  if (key && [...key].length <= 2) return <span className="elx-glyph">{key}</span>;
  return <Circle className="elx-icon" aria-hidden="true" />;
}

function useLook(id) {
  const store = useContext(GraphContext);
  const status = useSyncExternalStore(store.subscribe, () => store.get().statuses[id] || "idle");
  const problem = useSyncExternalStore(store.subscribe, () => store.get().problems[id] || "");
  const isSelected = useSyncExternalStore(store.subscribe, () => store.get().selected === id);
  const look = STATUS_LOOK[status] || STATUS_LOOK.idle;
  return { status, problem, isSelected, look };
}

function Handles() {
  return (
    <>
      <Handle id="t" type="target" position={Position.Top} />
      <Handle id="b" type="source" position={Position.Bottom} />
      {["r", "l"].map((side) => (
        <React.Fragment key={side}>
          <Handle
            id={`${side}-out`}
            type="source"
            position={side === "r" ? Position.Right : Position.Left}
            className="elx-side-handle"
            isConnectable={false}
          />
          <Handle
            id={`${side}-in`}
            type="target"
            position={side === "r" ? Position.Right : Position.Left}
            className="elx-side-handle"
            isConnectable={false}
          />
        </React.Fragment>
      ))}
    </>
  );
}

function contentProps(id, data, base, status, problem, isSelected) {
  return {
    className: [base, problem ? "elx-problem" : "", isSelected ? "elx-selected" : ""].join(" "),
    "data-step": data.step,
    "data-node-id": id,
    "data-status": status,
    "data-problem": problem ? "true" : undefined,
    title: problem || undefined,
  };
}

const StepNode = memo(function StepNode({ id, data }) {
  const { status, problem, isSelected, look } = useLook(id);
  return (
    <div
      {...contentProps(id, data, "elx-node", status, problem, isSelected)}
      style={{ borderColor: problem ? "#dc2626" : look.border, background: look.bg }}
    >
      <Handles />
      <TypeIcon data={data} />
      <div className="elx-text">
        <div className="elx-name">{data.label || data.step}</div>
        <div className="elx-model">{data.model || data.type}</div>
      </div>
      {problem ? <span className="elx-warn" aria-label="problem">⚠</span> : null}
      <span className="elx-dot" title={status} style={{ background: look.dot }} />
    </div>
  );
});

const GroupNode = memo(function GroupNode({ id, data }) {
  const { status, problem, isSelected, look } = useLook(id);
  const idle = status === "idle";
  return (
    <div
      {...contentProps(id, data, "elx-group", status, problem, isSelected)}
      data-group="true"
      style={{
        borderColor: problem ? "#dc2626" : idle ? "#a78bfa" : look.border,
        background: idle ? "rgba(237,233,254,.5)" : look.bg,
      }}
    >
      <Handles />
      <div className="elx-group-header">
        <TypeIcon data={data} />
        <div className="elx-text">
          <span className="elx-name">{data.label || data.step}</span>{" "}
          <span className="elx-model">{data.type}</span>
        </div>
        {problem ? <span className="elx-warn" aria-label="problem">⚠</span> : null}
        <span className="elx-dot" title={status} style={{ background: look.dot }} />
      </div>
    </div>
  );
});

// A lane beside the nodes it passes: right of everything between its ends (data edges) or left
// of it (loop edges), skipping the groups that contain either end.
function laneX(store, source, target, side, x1, y1, x2, y2, stagger) {
  const lookup = store.nodeLookup;
  const skip = new Set();
  for (const start of [source, target]) {
    for (let n = lookup.get(start); n && n.parentId && !skip.has(n.parentId); ) {
      skip.add(n.parentId);
      n = lookup.get(n.parentId);
    }
  }
  const lo = Math.min(y1, y2);
  const hi = Math.max(y1, y2);
  const boxes = [];
  for (const n of lookup.values()) {
    if (skip.has(n.id) || n.hidden) continue;
    const p = n.internals.positionAbsolute;
    const w = n.measured?.width ?? n.width ?? STEP_W;
    const h = n.measured?.height ?? n.height ?? STEP_H;
    if (p.y > hi || p.y + h < lo) continue;
    boxes.push([p.x, p.x + w]);
  }
  const gap = 16 + 6 * stagger; // at most 34: inside a group's PAD_X
  // Start beside the two ends, then step past every box the lane would cross (boxes wholly
  // beyond the lane are left alone, so a node parked far away does not drag the lane out).
  if (side === "r") {
    let lane = Math.max(x1, x2) + gap;
    boxes.sort((a, b) => a[0] - b[0]);
    for (const [left, right] of boxes) {
      if (left >= lane) break;
      if (right + gap > lane) lane = right + gap;
    }
    return lane;
  }
  let lane = Math.min(x1, x2) - gap;
  boxes.sort((a, b) => b[1] - a[1]);
  for (const [left, right] of boxes) {
    if (right <= lane) break;
    if (left - gap < lane) lane = left - gap;
  }
  return lane;
}

const LaneEdge = memo(function LaneEdge(props) {
  const { source, target, sourceX, sourceY, targetX, targetY, data, style, markerEnd } = props;
  const side = data?.side === "l" ? "l" : "r";
  const stagger = data?.lane || 0;
  const selector = useCallback(
    (s) => laneX(s, source, target, side, sourceX, sourceY, targetX, targetY, stagger),
    [source, target, side, sourceX, sourceY, targetX, targetY, stagger],
  );
  let x = useStore(selector);
  if (!isFinite(x)) x = side === "r" ? Math.max(sourceX, targetX) + 24 : Math.min(sourceX, targetX) - 24;
  const dir = targetY >= sourceY ? 1 : -1;
  const sx = side === "r" ? 1 : -1;
  const r = Math.max(0, Math.min(10, Math.abs(targetY - sourceY) / 2, Math.abs(x - sourceX), Math.abs(x - targetX)));
  const path = [
    `M ${sourceX} ${sourceY}`,
    `L ${x - sx * r} ${sourceY}`,
    `Q ${x} ${sourceY} ${x} ${sourceY + dir * r}`,
    `L ${x} ${targetY - dir * r}`,
    `Q ${x} ${targetY} ${x - sx * r} ${targetY}`,
    `L ${targetX} ${targetY}`,
  ].join(" ");
  return <BaseEdge path={path} style={style} markerEnd={markerEnd} interactionWidth={12} />;
});

export const NODE_TYPES = { step: StepNode, stepGroup: GroupNode };
export const EDGE_TYPES = { lane: LaneEdge };
