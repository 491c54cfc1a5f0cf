// The pipeline graph: React Flow 12 with custom step/group nodes, laid out top-to-bottom by
// dagre in the browser. Wrapped by flow.py (PipelineGraph); shipped with rx.asset(shared=True).
//
// Props (all plain data from the Reflex state):
//   nodes     [{id, step, type, label, model, parent, index, group, icon, x?, y?}]
//   edges     [{id, source, target, kind}]            kind: order | data | loop
//   statuses  {id: idle|queued|running|succeeded|failed|skipped}
//   problems  {id: message}
//   selected  id of the selected node ("" for none)
//   onSelect(id) onDragStop(id, x, y, index) onConnect(source, target) onDelete(id)
//
// Positions are local React state (useNodesState): a drag moves nodes here only and reports
// once, at drag stop. New `nodes`/`edges` props are laid out again (dagre) only when the
// structure changes (slots and order edges: not on a rename or a new label); React Flow gets
// the same node and edge objects for everything that did not change, so a keystroke in the
// YAML re-renders the one node it changed, not 200 nodes and 400 edges. Statuses, problems and
// the selection reach each node through a small store it subscribes to by id.
import React, { useCallback, useEffect, useLayoutEffect, useMemo, useRef } from "react";
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  getNodesBounds,
  useEdgesState,
  useNodesState,
  useReactFlow,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import {
  layoutGraph,
  mergeEdges,
  mergeNodes,
  placeLaid,
  siblingIndex,
  slotsOf,
  structureKey,
  toFlowEdges,
} from "./pipeline_layout.js";
import { CSS, EDGE_TYPES, GraphContext, NODE_TYPES, createLookStore } from "./pipeline_parts.jsx";

// Nodes a graph has before it gets a minimap.
const MINIMAP_FROM = 12;

const MIN_FIT_ZOOM = 0.6;

function isTypingTarget(target) {
  if (!target) return false;
  const tag = target.nodeName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
}

function Flow(props) {
  const { nodes: nodesProp, edges: edgesProp, statuses, problems, selected } = props;
  const handlers = useRef(props);
  handlers.current = props;
  const [nodes, setNodes, onNodesChange] = useNodesState([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState([]);
  const nodesRef = useRef(nodes);
  nodesRef.current = nodes;
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const { setViewport } = useReactFlow();
  const box = useRef(null);

  // Fit the whole graph when it is small enough to stay readable; a long pipeline is shown
  // from its top at a readable zoom instead of as a thin line.
  const fitTop = useCallback(
    (laid) => {
      const el = box.current;
      if (!el || !laid.length) return;
      const b = getNodesBounds(laid.filter((n) => !n.parentId));
      const w = el.clientWidth || 800;
      const h = el.clientHeight || 600;
      const pad = 24;
      let zoom = Math.min(1, (w - 2 * pad) / b.width, (h - 2 * pad) / b.height);
      let y = (h - b.height * zoom) / 2 - b.y * zoom;
      if (zoom < MIN_FIT_ZOOM) {
        zoom = Math.min(1, Math.max(MIN_FIT_ZOOM, (w - 2 * pad) / b.width));
        y = pad - b.y * zoom;
      }
      const x = (w - b.width * zoom) / 2 - b.x * zoom;
      setViewport({ x, y, zoom });
    },
    [setViewport],
  );

  // Content keys: a resent but identical list does not reset local positions.
  const nodesKey = useMemo(() => JSON.stringify(nodesProp || []), [nodesProp]);
  const edgesKey = useMemo(() => JSON.stringify(edgesProp || []), [edgesProp]);
  const latest = useRef({ nodes: nodesProp, edges: edgesProp });
  latest.current = { nodes: nodesProp, edges: edgesProp };
  const slotsKey = useRef("");
  const idsRef = useRef(new Set());
  const layoutCache = useRef({ key: "", nodes: [], slots: new Map() });

  useEffect(() => {
    const raw = latest.current.nodes || [];
    const rawEdges = latest.current.edges || [];
    const slots = slotsOf(raw);
    const key = structureKey(raw, rawEdges, slots);
    if (key !== layoutCache.current.key) {
      layoutCache.current = { key, nodes: layoutGraph(raw, rawEdges), slots };
    }
    const cache = layoutCache.current;
    const laid = placeLaid(cache.nodes, cache.slots, raw, slots).map((n) => ({
      ...n,
      selected: n.id === selectedRef.current,
    }));
    setNodes((prev) => mergeNodes(prev, laid));
    idsRef.current = new Set(laid.map((n) => n.id));
    const flowEdges = toFlowEdges(rawEdges, idsRef.current, selectedRef.current);
    setEdges((prev) => mergeEdges(prev, flowEdges));
    // Fit when steps come or go (not on a rename: typing a name keeps the view still).
    const shape = [...slots.values()].sort().join("\n");
    if (shape !== slotsKey.current) {
      slotsKey.current = shape;
      requestAnimationFrame(() => fitTop(laid));
    }
  }, [nodesKey, edgesKey, setNodes, setEdges, fitTop]);

  useEffect(() => {
    const flowEdges = toFlowEdges(latest.current.edges || [], idsRef.current, selected);
    setEdges((prev) => mergeEdges(prev, flowEdges));
    setNodes((ns) => {
      let changed = false;
      const next = ns.map((n) => {
        const want = n.id === selected;
        if (Boolean(n.selected) === want) return n;
        changed = true;
        return { ...n, selected: want };
      });
      return changed ? next : ns;
    });
  }, [selected, setNodes, setEdges]);

  const onNodeClick = useCallback((_event, node) => {
    handlers.current.onSelect?.(node.id);
  }, []);

  const onNodeDragStop = useCallback((_event, node, dragged) => {
    const moved = new Map((dragged || [node]).map((n) => [n.id, n]));
    const all = nodesRef.current.map((n) => moved.get(n.id) || n);
    const index = siblingIndex(node, all);
    handlers.current.onDragStop?.(node.id, node.position.x, node.position.y, index);
  }, []);

  const onConnect = useCallback((conn) => {
    if (conn.source && conn.target && conn.source !== conn.target) {
      handlers.current.onConnect?.(conn.source, conn.target);
    }
  }, []);

  const onKeyDown = useCallback((event) => {
    if (event.key !== "Delete" && event.key !== "Backspace") return;
    if (isTypingTarget(event.target)) return;
    const picked = nodesRef.current.filter((n) => n.selected);
    let ids = picked
      .filter((n) => !picked.some((p) => p.id === n.parentId))
      .map((n) => n.id);
    if (!ids.length && selectedRef.current) ids = [selectedRef.current];
    if (!ids.length) return;
    event.preventDefault();
    for (const id of ids) handlers.current.onDelete?.(id);
  }, []);

  const look = useMemo(createLookStore, []);
  useLayoutEffect(() => {
    look.set({ statuses: statuses || {}, problems: problems || {}, selected: selected || "" });
  }, [look, statuses, problems, selected]);

  return (
    <GraphContext.Provider value={look}>
      <div
        ref={box}
        className="elx-flow-keys"
        style={{ width: "100%", height: "100%" }}
        onKeyDown={onKeyDown}
      >
        <ReactFlow
          className="elx-flow"
          nodes={nodes}
          edges={edges}
          nodeTypes={NODE_TYPES}
          edgeTypes={EDGE_TYPES}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          onNodeClick={onNodeClick}
          onNodeDragStop={onNodeDragStop}
          onConnect={onConnect}
          deleteKeyCode={null}
          zIndexMode="auto"
          minZoom={0.1}
          proOptions={{ hideAttribution: true }}
        >
          <Background gap={16} size={1} color="#e2e8f0" />
          <Controls showInteractive={false} />
          {/* Only for graphs too big to see at once: on a small pipeline the map was a grey
              box over the last node. Small and light, top right (the layout runs downwards). */}
          {props.showMinimap === false || nodes.length <= MINIMAP_FROM ? null : (
            <MiniMap
              pannable
              zoomable
              position="top-right"
              style={{ width: 140, height: 90 }}
              nodeColor="#cbd5e1"
              maskColor="rgba(241, 245, 249, 0.55)"
            />
          )}
        </ReactFlow>
      </div>
    </GraphContext.Provider>
  );
}

export function PipelineGraph(props) {
  const { id, className, style, nodes, edges, statuses, problems, selected } = props;
  return (
    <div
      id={id}
      className={["elx-pipeline-graph", className].filter(Boolean).join(" ")}
      style={{ width: "100%", height: "100%", minHeight: 240, position: "relative", ...style }}
      data-node-count={(nodes || []).length}
    >
      <style>{CSS}</style>
      <ReactFlowProvider>
        <Flow
          nodes={nodes}
          edges={edges}
          statuses={statuses}
          problems={problems}
          selected={selected}
          showMinimap={props.showMinimap}
          onSelect={props.onSelect}
          onDragStop={props.onDragStop}
          onConnect={props.onConnect}
          onDelete={props.onDelete}
        />
      </ReactFlowProvider>
    </div>
  );
}

export default PipelineGraph;
