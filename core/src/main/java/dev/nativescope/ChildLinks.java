package dev.nativescope;

/**
 * The live children of one {@link CancellableContext}: an intrusive doubly linked list through the
 * children's own sibling fields ({@link CancellableContext#previousSibling},
 * {@link CancellableContext#nextSibling}), so that linking and unlinking a child are constant-time
 * and allocate nothing.
 *
 * <p>Not thread-safe by itself: the parent decides who may touch it. While the parent is live,
 * only code holding the parent's lock reads or changes the list and its children's sibling links.
 * The parent's transition to done, under the same lock, freezes them: from then on they belong to
 * the parent's cancelling thread alone, which {@linkplain #takeAll takes the list} and walks it
 * without the lock.
 */
final class ChildLinks {
    private CancellableContext first;
    private CancellableContext last;

    void append(CancellableContext child) {
        child.previousSibling = last;
        if (last == null) {
            first = child;
        } else {
            last.nextSibling = child;
        }
        last = child;
    }

    void unlink(CancellableContext child) {
        CancellableContext previous = child.previousSibling;
        CancellableContext next = child.nextSibling;
        if (previous == null) {
            first = next;
        } else {
            previous.nextSibling = next;
        }
        if (next == null) {
            last = previous;
        } else {
            next.previousSibling = previous;
        }
        child.previousSibling = null;
        child.nextSibling = null;
    }

    boolean isEmpty() {
        return first == null;
    }

    /** Empties the list; only for the thread that owns the frozen list. @return its first child, or null */
    CancellableContext takeAll() {
        CancellableContext child = first;
        first = null;
        last = null;
        return child;
    }

    /** Clears {@code child}'s sibling links, from a list taken with {@link #takeAll}. @return the child after it */
    static CancellableContext detach(CancellableContext child) {
        CancellableContext next = child.nextSibling;
        child.previousSibling = null;
        child.nextSibling = null;
        return next;
    }

    int size() {
        int count = 0;
        for (CancellableContext child = first; child != null; child = child.nextSibling) {
            count++;
        }
        return count;
    }
}
