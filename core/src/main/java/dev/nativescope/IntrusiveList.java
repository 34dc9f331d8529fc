package dev.nativescope;

/**
 * A doubly linked list through links stored in the elements themselves, so that appending and
 * unlinking are constant-time and allocate nothing: the shape shared by a context's children
 * ({@link ChildLinks}) and its pending actions ({@link DoneActions}), which say where an element
 * keeps its links.
 *
 * <p>Not thread-safe by itself: the owning context guards it with its lock while live and hands it
 * to its cancelling thread when it becomes done (see {@link CancellableContext}).
 *
 * @param <N> the element type
 */
abstract class IntrusiveList<N> {
    private N first;
    private N last;

    abstract N previousOf(N node);

    abstract N nextOf(N node);

    abstract void setPrevious(N node, N previous);

    abstract void setNext(N node, N next);

    final boolean isEmpty() {
        return first == null;
    }

    final void append(N node) {
        setPrevious(node, last);
        if (last == null) {
            first = node;
        } else {
            setNext(last, node);
        }
        last = node;
    }

    final void unlink(N node) {
        N previous = previousOf(node);
        N next = nextOf(node);
        if (previous == null) {
            first = next;
        } else {
            setNext(previous, next);
        }
        if (next == null) {
            last = previous;
        } else {
            setPrevious(next, previous);
        }
        setPrevious(node, null);
        setNext(node, null);
    }

    /** Empties the list; only for the thread that owns it once frozen. @return its first element, or null */
    final N takeAll() {
        N node = first;
        first = null;
        last = null;
        return node;
    }

    /** Clears the links of {@code node}, from a list taken with {@link #takeAll}. @return the element after it */
    final N detach(N node) {
        N next = nextOf(node);
        setPrevious(node, null);
        setNext(node, null);
        return next;
    }

    final int size() {
        int count = 0;
        for (N node = first; node != null; node = nextOf(node)) {
            count++;
        }
        return count;
    }
}
