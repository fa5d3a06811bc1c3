"""Keyboard shortcuts for the labeling tabs, as one <script> for the page's <head> (`launch(head=KEYS_JS)`).

A key press clicks the visible button that carries the class `lab-key-<key>` (e.g. elem_classes="lab-key-1"),
unless the focus is in a text field, so typing a reason or an ideal answer never labels anything. Buttons in a
hidden tab are not visible, so each tab's keys act only while that tab is open.
"""

KEYS_JS = """
<script>
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
  const t = ev.target;
  if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
  const key = (ev.key || "").toLowerCase();
  if (!/^[a-z0-9]$/.test(key)) return;
  const btn = [...document.querySelectorAll(".lab-key-" + key)].find((b) => b.offsetParent !== null && !b.disabled);
  if (btn) { ev.preventDefault(); btn.click(); }
});
</script>
"""
