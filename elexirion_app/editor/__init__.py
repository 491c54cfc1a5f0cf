"""The visual editor's model, without Reflex: graph ⇄ YAML that keeps the user's text.

- ``document``: ``EditorDocument`` (parse, text, data, edits that mutate it), ``wrap_bare``.
- ``graph``: ``graph_of(data) -> Graph`` of ``Node``/``Edge`` and ``Graph.to_props()``.
- ``edits``: the same edits on text (``insert_step``, ``delete_step``, ``move_step``,
  ``set_field``, ``rename_step``, ``connect``) returning the new text.
- ``diff``: ``line_diff`` and ``diff_stats`` between two versions.
Inside: ``tree`` (step ids and containers), ``refs`` (what a step reads, renaming),
``templates`` (a minimal step per type), ``ops`` (edits as primitive changes),
``primitives``; ``splice`` with ``fields`` and ``lists`` (writing changes into the text),
``readback`` (reading it back), ``safeload`` (the fast open path), ``yamltext``.
"""
