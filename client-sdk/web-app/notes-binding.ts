// Binds a textarea to the conversation's shared notes (a Y.Text): local typing becomes the
// smallest insert/delete, remote edits update the textarea while keeping the caret where the
// person was typing (shifted by what others inserted or deleted before it).

import type * as Y from "yjs";

/** The minimal edit turning `before` into `after`: common prefix and suffix kept. */
export function diffText(before: string, after: string): { index: number; remove: number; insert: string } {
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let end = 0;
  while (end < max - start && before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) end++;
  return { index: start, remove: before.length - start - end, insert: after.slice(start, after.length - end) };
}

/** Starts the binding; returns a function that ends it. `origin` marks this binding's own transactions. */
export function bindTextarea(text: Y.Text, textarea: HTMLTextAreaElement, origin: object): () => void {
  textarea.value = text.toString();
  const onInput = () => {
    const edit = diffText(text.toString(), textarea.value);
    if (edit.remove === 0 && edit.insert === "") return;
    text.doc?.transact(() => {
      if (edit.remove > 0) text.delete(edit.index, edit.remove);
      if (edit.insert) text.insert(edit.index, edit.insert);
    }, origin);
  };
  const onChange = (event: Y.YTextEvent, transaction: Y.Transaction) => {
    if (transaction.origin === origin) return;
    const shift = (position: number) => {
      let index = 0;
      let shifted = position;
      for (const op of event.delta) {
        if (index >= position) break;
        if (op.retain !== undefined) index += op.retain;
        else if (typeof op.insert === "string") shifted += op.insert.length;
        else if (op.delete !== undefined) {
          shifted -= Math.min(op.delete, position - index);
          index += op.delete;
        }
      }
      return Math.max(0, shifted);
    };
    const focused = document.activeElement === textarea;
    const [start, end] = [shift(textarea.selectionStart), shift(textarea.selectionEnd)];
    textarea.value = text.toString();
    if (focused) textarea.setSelectionRange(start, end);
  };
  textarea.addEventListener("input", onInput);
  text.observe(onChange);
  return () => {
    textarea.removeEventListener("input", onInput);
    text.unobserve(onChange);
  };
}
