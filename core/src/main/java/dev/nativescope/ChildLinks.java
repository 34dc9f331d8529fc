package dev.nativescope;

/**
 * The live children of one {@link CancellableContext}, linked through the children's own sibling
 * fields ({@link CancellableContext#previousSibling}, {@link CancellableContext#nextSibling}).
 *
 * <p>Not thread-safe by itself: the parent decides who may touch it. While the parent is live,
 * only code holding the parent's lock reads or changes the list and its children's sibling links.
 * The parent's transition to done, under the same lock, freezes them: from then on they belong to
 * the parent's cancelling thread alone, which {@linkplain #takeAll takes the list} and walks it
 * without the lock.
 */
final class ChildLinks extends IntrusiveList<CancellableContext> {
    @Override CancellableContext previousOf(CancellableContext child) { return child.previousSibling; }
    @Override CancellableContext nextOf(CancellableContext child) { return child.nextSibling; }
    @Override void setPrevious(CancellableContext child, CancellableContext previous) { child.previousSibling = previous; }
    @Override void setNext(CancellableContext child, CancellableContext next) { child.nextSibling = next; }
}
