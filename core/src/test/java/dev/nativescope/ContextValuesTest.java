package dev.nativescope;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.entry;

/** Request values: look-up, shadowing, types, and the flattened set native code sees. */
class ContextValuesTest {
    private static final ContextKey<String> REQUEST_ID = ContextKey.ofString("request-id");
    private static final ContextKey<Integer> ATTEMPT = ContextKey.of("attempt", Integer.class);
    private static final ContextKey<String> TENANT = ContextKey.ofString("tenant");

    @Test
    void valueIsFoundInTheContextAndItsDescendants() {
        Context context = Context.background().withValue(REQUEST_ID, "r-1");
        CancellableContext descendant = context.withCancel();
        Context further = descendant.withValue(ATTEMPT, 3);

        assertThat(context.value(REQUEST_ID)).contains("r-1");
        assertThat(descendant.value(REQUEST_ID)).contains("r-1");
        assertThat(further.value(REQUEST_ID)).contains("r-1");
        assertThat(further.value(ATTEMPT)).contains(3);
        descendant.close();
        assertThat(further.value(REQUEST_ID)).as("values outlive cancellation").contains("r-1");
    }

    @Test
    void absentValueIsEmpty() {
        Context context = Context.background().withValue(REQUEST_ID, "r-1");
        assertThat(context.value(TENANT)).isEmpty();
        assertThat(Context.background().value(REQUEST_ID)).isEmpty();
    }

    @Test
    void nearestBindingShadowsWithoutChangingTheAncestor() {
        Context outer = Context.background().withValue(REQUEST_ID, "outer");
        Context inner = outer.withValue(REQUEST_ID, "inner");

        assertThat(inner.value(REQUEST_ID)).contains("inner");
        assertThat(outer.value(REQUEST_ID)).contains("outer");
    }

    @Test
    void keysHaveIdentitySemanticsOnTheJavaSide() {
        ContextKey<String> sameName = ContextKey.ofString("request-id");
        Context context = Context.background().withValue(REQUEST_ID, "mine");

        assertThat(context.value(sameName)).isEmpty();
        assertThat(sameName).isNotEqualTo(REQUEST_ID);
        assertThat(sameName.name()).isEqualTo(REQUEST_ID.name());
    }

    @Test
    void valuesAreTyped() {
        Context context = Context.background().withValue(ATTEMPT, 7);
        Integer attempt = context.value(ATTEMPT).orElseThrow();
        assertThat(attempt).isEqualTo(7);
        assertThat(ATTEMPT.type()).isEqualTo(Integer.class);
    }

    @Test
    @SuppressWarnings({"unchecked", "rawtypes"})
    void valueOfTheWrongTypeIsRejectedEvenThroughRawTypes() {
        ContextKey raw = ATTEMPT;
        assertThatThrownBy(() -> Context.background().withValue(raw, "three"))
                .isInstanceOf(ClassCastException.class)
                .hasMessage("value of context key \"attempt\" must be a java.lang.Integer, not a java.lang.String");
    }

    @Test
    void nullsAreRejectedWithTheArgumentsName() {
        assertThatThrownBy(() -> Context.background().withValue(null, "v"))
                .isInstanceOf(NullPointerException.class).hasMessage("key");
        assertThatThrownBy(() -> Context.background().withValue(REQUEST_ID, null))
                .isInstanceOf(NullPointerException.class).hasMessage("value");
        assertThatThrownBy(() -> Context.background().value(null))
                .isInstanceOf(NullPointerException.class).hasMessage("key");
        assertThatThrownBy(() -> Context.background().onDone(null))
                .isInstanceOf(NullPointerException.class).hasMessage("action");
        assertThatThrownBy(() -> ContextKey.of(null, String.class))
                .isInstanceOf(NullPointerException.class).hasMessage("name");
        assertThatThrownBy(() -> ContextKey.of("k", null))
                .isInstanceOf(NullPointerException.class).hasMessage("type");
        assertThatThrownBy(() -> REQUEST_ID.nativeValue(null))
                .isInstanceOf(NullPointerException.class).hasMessage("value");
    }

    @Test
    void badKeysAreRejectedWithClearMessages() {
        assertThatThrownBy(() -> ContextKey.ofString(" "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("context key name must not be blank: \" \"");
        assertThatThrownBy(() -> ContextKey.ofString("a\0b"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must not contain NUL characters").hasMessageContaining("a\\0b");
        assertThatThrownBy(() -> ContextKey.of("n", int.class))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must not be primitive (int)");
    }

    @Test
    void nativeValueIsStringValueOf() {
        UUID id = UUID.fromString("123e4567-e89b-12d3-a456-426614174000");
        assertThat(ContextKey.of("id", UUID.class).nativeValue(id)).isEqualTo(id.toString());
        assertThat(ATTEMPT.nativeValue(42)).isEqualTo("42");
        assertThat(REQUEST_ID.nativeValue("grüße")).isEqualTo("grüße");
        assertThat(ATTEMPT.toString()).isEqualTo("ContextKey[attempt: java.lang.Integer]");
    }

    @Test
    void valuesListsVisibleBindingsNearestFirst() {
        ContextKey<String> otherRequestId = ContextKey.ofString("request-id");
        Context context = Context.background()
                .withValue(REQUEST_ID, "outer")
                .withValue(TENANT, "acme")
                .withCancel()
                .withValue(REQUEST_ID, "inner")
                .withValue(otherRequestId, "other");

        Map<ContextKey<?>, Object> values = context.values();

        // Java-side keys are distinct by identity, so both request-id keys are visible here.
        assertThat(values).containsExactly(
                entry(otherRequestId, "other"), entry(REQUEST_ID, "inner"), entry(TENANT, "acme"));
        assertThatThrownBy(() -> values.put(ATTEMPT, 1)).isInstanceOf(UnsupportedOperationException.class);
    }

    @Test
    void visibleValuesHaveEachNativeNameOnceNearestFirst() {
        ContextKey<String> otherRequestId = ContextKey.ofString("request-id");
        Context context = Context.background()
                .withValue(REQUEST_ID, "outer")
                .withValue(TENANT, "acme")
                .withValue(ATTEMPT, 1)
                .withCancel()
                .withValue(REQUEST_ID, "inner")
                .withValue(otherRequestId, "other")
                .withValue(ATTEMPT, 2);

        List<Map.Entry<ContextKey<?>, Object>> visible = context.visibleValues();

        assertThat(visible).containsExactly(
                Map.entry(ATTEMPT, 2), Map.entry(otherRequestId, "other"), Map.entry(TENANT, "acme"));
        assertThatThrownBy(() -> visible.add(Map.entry(TENANT, "x"))).isInstanceOf(UnsupportedOperationException.class);
        assertThat(Context.background().withCancel().visibleValues()).isEmpty();
    }
}
