// ChatView renders a chat log: messages as text (never markup), follows
// new messages while the reader is at the bottom, and otherwise offers a
// "new messages" jump instead of yanking the reader down.
import { h } from './page.js';

const MAX_MESSAGES = 200;
const NEAR_BOTTOM_PX = 48;

const ROLE_BADGE = { host: 'Host', moderator: 'Mod', admin: 'Admin' };

export class ChatView {
  // list: the scrolling <ol>; jump: the "new messages" button; opts.actions
  // (message) returns extra nodes per message (moderator buttons).
  constructor(list, jump, opts = {}) {
    this.list = list;
    this.jump = jump;
    this.actions = opts.actions || null;
    this.onName = opts.onName || null;
    this.youId = '';
    this.unseen = 0;
    this.ids = new Map(); // message id -> <li>
    list.addEventListener('scroll', () => {
      if (this.atBottom()) this.clearUnseen();
    }, { passive: true });
    jump.addEventListener('click', () => this.scrollDown(true));
    this.clearUnseen();
  }

  atBottom() {
    const l = this.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollDown(smooth = false) {
    this.list.scrollTo({ top: this.list.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    this.clearUnseen();
  }

  clearUnseen() {
    this.unseen = 0;
    this.jump.hidden = true;
  }

  // add appends one message; known ids are ignored (a resume may replay).
  add(m, { held = false } = {}) {
    if (!m || !m.id || this.ids.has(m.id)) return null;
    const follow = this.atBottom();
    const user = m.user || {};
    const role = user.role || 'viewer';
    const name = h('span', { class: 'who', dataset: { role } }, user.name || 'Guest');
    const li = h('li', { class: 'msg', dataset: { id: m.id, user: user.id || '', role } },
      ROLE_BADGE[role] ? h('span', { class: `badge role-${role}` }, ROLE_BADGE[role]) : null,
      name,
      h('span', { class: 'text' }, m.text || ''),
      held ? h('span', { class: 'note' }, 'Waiting for review') : null,
      this.actions ? this.actions(m) : null);
    if (user.id && user.id === this.youId) li.classList.add('mine');
    if (this.onName) {
      name.tabIndex = 0;
      name.setAttribute('role', 'button');
      name.addEventListener('click', () => this.onName(user));
      name.addEventListener('keydown', (e) => { if (e.key === 'Enter') this.onName(user); });
    }
    this.list.append(li);
    this.ids.set(m.id, li);
    while (this.list.children.length > MAX_MESSAGES) {
      const first = this.list.firstElementChild;
      if (first.dataset.id) this.ids.delete(first.dataset.id);
      first.remove();
    }
    const mine = user.id && user.id === this.youId;
    if (follow || mine) {
      this.scrollDown();
    } else {
      this.unseen++;
      this.jump.hidden = false;
      this.jump.textContent = this.unseen === 1 ? '1 new message ↓' : `${this.unseen} new messages ↓`;
    }
    return li;
  }

  // notice adds a system line (joins, moderation, sales).
  notice(text, kind = 'info') {
    const follow = this.atBottom();
    this.list.append(h('li', { class: `msg system notice-${kind}` }, h('span', { class: 'text' }, text)));
    if (follow) this.scrollDown();
  }

  remove(id) {
    const li = this.ids.get(id);
    if (!li) return false;
    this.ids.delete(id);
    li.classList.add('removed');
    li.replaceChildren(h('span', { class: 'text' }, 'Message removed by a moderator'));
    return true;
  }

  // replace renders a welcome's history, keeping what is already shown.
  history(events) {
    for (const ev of events || []) if (ev && ev.message) this.add(ev.message);
    this.scrollDown();
  }

  markUser(userId, cls, on = true) {
    for (const li of this.list.querySelectorAll('li.msg')) {
      if (li.dataset.user === userId) li.classList.toggle(cls, on);
    }
  }
}
