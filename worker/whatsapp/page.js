// Helpers every script the worker runs in WhatsApp Web starts with (worker/locators.py).
// arguments[0] is the locator table; the script's own arguments follow as ARGS.
const TABLE = arguments[0];
const ARGS = Array.prototype.slice.call(arguments, 1);

// The elements of the first alternative of `name` that matches anything under `root`
// (the document when null): what find_elements would return, one alternative at a time.
function findAll(name, root) {
  const scope = root || document;
  // A name an older selectors file lacks matches nothing, rather than failing the script.
  for (const alternative of TABLE[name] || []) {
    let found = [];
    if (alternative.startsWith('xpath:')) {
      const snap = document.evaluate(alternative.slice(6), scope, null,
                                     XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
      for (let i = 0; i < snap.snapshotLength; i++) {
        const node = snap.snapshotItem(i);
        if (node.nodeType === 1) found.push(node);
      }
    } else {
      found = Array.from(scope.querySelectorAll(alternative));
    }
    if (found.length) return found;
  }
  return [];
}

function find(name, root) {
  const found = findAll(name, root);
  return found.length ? found[0] : null;
}

// The text a box or bubble shows: text nodes, emoji images by their alt text, <br> as newline.
function read(node) {
  if (node.nodeType === 3) return node.nodeValue;
  if (node.nodeName === 'IMG') return node.alt || '';
  if (node.nodeName === 'BR') return '\n';
  let out = '';
  node.childNodes.forEach((child, i) => {
    const block = child.nodeType === 1 && ['DIV', 'P'].includes(child.nodeName);
    if (block && i > 0 && out && !out.endsWith('\n')) out += '\n';
    out += read(child);
  });
  return out;
}
