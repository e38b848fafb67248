/* Unit tests for tools/agent-ctl/json.c and pbjson.c, against the messages in
 * pbjson_test.proto. Run under -fsanitize=address,undefined (or valgrind): every
 * message built, including those abandoned half-way by an error, must be freed by
 * protobuf_c_message_free_unpacked(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/util.h"
#include "json.h"
#include "pbjson.h"
#include "pbjson_test.pb-c.h"

typedef Pbjsontest__AllTypes AllTypes;

static void all_types_freep(AllTypes **m)
{
    if (*m)
        protobuf_c_message_free_unpacked(&(*m)->base, NULL);
}
#define cleanup_all_types __attribute__((cleanup(all_types_freep)))

/* Parse json as AllTypes, failing the test with the error message if it fails. */
static AllTypes *parse_ok(const char *json)
{
    struct ka_error err = {0};
    ProtobufCMessage *m = NULL;
    if (pbjson_to_message(&pbjsontest__all_types__descriptor, json, strlen(json), &m, &err) < 0)
        fail_msg("parsing %s: %s", json, err.msg);
    assert_non_null(m);
    return (AllTypes *)m;
}

/* Expect parsing json as desc to fail with an error containing want. */
static void expect_error_desc(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                              const char *want)
{
    struct ka_error err = {0};
    ProtobufCMessage *m = (ProtobufCMessage *)&err; /* must be reset to NULL */
    int rc = pbjson_to_message(desc, json, len, &m, &err);
    if (rc >= 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        fail_msg("parsing %.80s succeeded, expected an error with '%s'", json, want);
    }
    assert_null(m);
    assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
    if (!strstr(err.msg, want))
        fail_msg("parsing %.80s: error '%s' does not contain '%s'", json, err.msg, want);
}

static void expect_error(const char *json, const char *want)
{
    expect_error_desc(&pbjsontest__all_types__descriptor, json, strlen(json), want);
}

static void expect_json_error(const char *json, size_t len, const char *want)
{
    struct ka_error err = {0};
    struct json_object *v = NULL;
    if (ctl_json_parse(json, len, &v, &err) == 0) {
        json_object_put(v);
        fail_msg("JSON %.80s parsed, expected an error with '%s'", json, want);
    }
    assert_null(v);
    if (!strstr(err.msg, want))
        fail_msg("JSON %.80s: error '%s' does not contain '%s'", json, err.msg, want);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("'%s' does not contain '%s'", haystack, needle);
}

/* Two messages are equal when their wire encodings are (fields pack in tag order). */
static void assert_same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a);
    size_t lb = protobuf_c_message_get_packed_size(b);
    assert_int_equal(la, lb);
    cleanup_free uint8_t *pa = ka_xmalloc(la);
    cleanup_free uint8_t *pb = ka_xmalloc(lb);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    assert_memory_equal(pa, pb, la);
}

/* JSON -> message -> JSON -> message, and through the wire codec, must agree. */
static void assert_round_trip(const AllTypes *m, unsigned flags)
{
    cleanup_free char *json = pbjson_from_message(&m->base, flags);
    assert_non_null(json);
    cleanup_all_types AllTypes *again = parse_ok(json);
    assert_same_wire(&m->base, &again->base);

    size_t len = protobuf_c_message_get_packed_size(&m->base);
    cleanup_free uint8_t *wire = ka_xmalloc(len);
    protobuf_c_message_pack(&m->base, wire);
    ProtobufCMessage *unpacked =
        protobuf_c_message_unpack(&pbjsontest__all_types__descriptor, NULL, len, wire);
    assert_non_null(unpacked);
    cleanup_free char *json2 = pbjson_from_message(unpacked, flags);
    protobuf_c_message_free_unpacked(unpacked, NULL);
    assert_string_equal(json, json2);
}

static const char all_scalars_json[] =
    "{\"f_int32\": -2147483648, \"f_sint32\": 2147483647, \"f_sfixed32\": -7,"
    " \"f_int64\": \"-9223372036854775808\", \"f_sint64\": 9223372036854775807,"
    " \"f_sfixed64\": -1, \"f_uint32\": 4294967295, \"f_fixed32\": 42,"
    " \"f_uint64\": \"18446744073709551615\", \"f_fixed64\": 18446744073709551615,"
    " \"f_float\": 0.1, \"f_double\": 1e-300, \"f_bool\": true, \"f_enum\": \"BLUE\","
    " \"f_string\": \"a\\\"b\\\\c\\n\\u0001\\u00e9\\ud83d\\ude00/\\/\","
    " \"f_bytes\": \"aGVsbG8=\"}";

static void test_scalars(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m = parse_ok(all_scalars_json);
    assert_int_equal(m->f_int32, INT32_MIN);
    assert_int_equal(m->f_sint32, INT32_MAX);
    assert_int_equal(m->f_sfixed32, -7);
    assert_true(m->f_int64 == INT64_MIN);
    assert_true(m->f_sint64 == INT64_MAX);
    assert_true(m->f_sfixed64 == -1);
    assert_true(m->f_uint32 == UINT32_MAX);
    assert_true(m->f_fixed32 == 42);
    assert_true(m->f_uint64 == UINT64_MAX);
    assert_true(m->f_fixed64 == UINT64_MAX);
    assert_true(m->f_float == 0.1f);
    assert_true(m->f_double == 1e-300);
    assert_true(m->f_bool);
    assert_int_equal(m->f_enum, PBJSONTEST__COLOR__BLUE);
    assert_string_equal(m->f_string, "a\"b\\c\n\x01\xc3\xa9\xf0\x9f\x98\x80//");
    assert_int_equal(m->f_bytes.len, 5);
    assert_memory_equal(m->f_bytes.data, "hello", 5);

    cleanup_free char *out = pbjson_from_message(&m->base, 0);
    assert_string_equal(out,
                        "{\"f_int32\":-2147483648,\"f_sint32\":2147483647,\"f_sfixed32\":-7,"
                        "\"f_int64\":-9223372036854775808,\"f_sint64\":9223372036854775807,"
                        "\"f_sfixed64\":-1,\"f_uint32\":4294967295,\"f_fixed32\":42,"
                        "\"f_uint64\":18446744073709551615,\"f_fixed64\":18446744073709551615,"
                        "\"f_float\":0.1,\"f_double\":1e-300,\"f_bool\":true,\"f_enum\":\"BLUE\","
                        "\"f_string\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\xf0\x9f\x98\x80//\","
                        "\"f_bytes\":\"aGVsbG8=\"}");
    assert_round_trip(m, 0);
    assert_round_trip(m, PBJSON_PRETTY | PBJSON_EMIT_DEFAULTS);
}

static void test_non_finite_floats(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m =
        parse_ok("{\"f_float\": \"NaN\", \"f_double\": \"-Infinity\","
                 " \"r_double\": [\"Infinity\", \"2.5\", -0.0, 1.7976931348623157e308]}");
    assert_true(isnan(m->f_float));
    assert_true(isinf(m->f_double) && m->f_double < 0);
    assert_int_equal(m->n_r_double, 4);
    assert_true(m->r_double[1] == 2.5);
    cleanup_free char *out = pbjson_from_message(&m->base, 0);
    assert_string_equal(out, "{\"f_float\":\"NaN\",\"f_double\":\"-Infinity\","
                             "\"r_double\":[\"Infinity\",2.5,-0,1.7976931348623157e+308]}");
}

static void test_repeated(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m =
        parse_ok("{\"r_int32\": [1, -2, 3], \"r_sint64\": [\"-5\", 6], \"r_uint64\": [0, \"42\"],"
                 " \"r_float\": [1.5], \"r_bool\": [true, false], \"r_enum\": [\"RED\", 2, -3],"
                 " \"r_string\": [\"x\", \"\"], \"r_bytes\": [\"AA==\", \"\"],"
                 " \"r_nested\": [{\"name\": \"a\"}, {}, {\"inner\": {\"flag\": true}}],"
                 " \"r_fixed32\": [7], \"r_double\": []}");
    assert_int_equal(m->n_r_int32, 3);
    assert_int_equal(m->r_int32[1], -2);
    assert_int_equal(m->n_r_sint64, 2);
    assert_true(m->r_sint64[0] == -5);
    assert_true(m->r_uint64[1] == 42);
    assert_int_equal(m->r_enum[2], PBJSONTEST__COLOR__BLUE);
    assert_string_equal(m->r_string[1], "");
    assert_int_equal(m->r_bytes[0].len, 1);
    assert_int_equal(m->r_bytes[1].len, 0);
    assert_int_equal(m->n_r_nested, 3);
    assert_string_equal(m->r_nested[0]->name, "a");
    assert_true(m->r_nested[2]->inner->flag);
    assert_int_equal(m->n_r_double, 0);

    cleanup_free char *out = pbjson_from_message(&m->base, 0);
    assert_string_equal(out, "{\"r_int32\":[1,-2,3],\"r_sint64\":[-5,6],\"r_uint64\":[0,42],"
                             "\"r_float\":[1.5],\"r_bool\":[true,false],"
                             "\"r_enum\":[\"RED\",\"GREEN\",\"BLUE\"],\"r_string\":[\"x\",\"\"],"
                             "\"r_bytes\":[\"AA==\",\"\"],"
                             "\"r_nested\":[{\"name\":\"a\"},{},{\"inner\":{\"flag\":true}}],"
                             "\"r_fixed32\":[7]}");
    assert_round_trip(m, 0);
}

static void test_camel_case_names(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m =
        parse_ok("{\"fInt32\": 5, \"fUint64\": 6, \"rNested\": [{\"name\": \"n\"}],"
                 " \"byId\": {\"3\": {}}, \"choiceStr\": \"s\", \"f_bool\": true}");
    assert_int_equal(m->f_int32, 5);
    assert_true(m->f_uint64 == 6);
    assert_int_equal(m->n_r_nested, 1);
    assert_int_equal(m->n_by_id, 1);
    assert_int_equal(m->choice_case, PBJSONTEST__ALL_TYPES__CHOICE_CHOICE_STR);
    assert_true(m->f_bool);
    /* Output uses the proto names. */
    cleanup_free char *out = pbjson_from_message(&m->base, 0);
    assert_contains(out, "\"f_int32\":5");
    assert_contains(out, "\"choice_str\":\"s\"");
    /* Proto-style camel spelling is not a name. */
    expect_error("{\"FInt32\": 1}", "unknown field 'FInt32'");
    expect_error("{\"fint32\": 1}", "unknown field 'fint32'");
}

static void test_integer_forms(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m =
        parse_ok("{\"f_int32\": \"-12\", \"f_int64\": \"9007199254740993\", \"f_uint32\": 1e3,"
                 " \"f_sint32\": 2.0, \"f_uint64\": \"1E2\", \"f_fixed32\": -0}");
    assert_int_equal(m->f_int32, -12);
    assert_true(m->f_int64 == 9007199254740993LL); /* 2^53 + 1: exact, not via double */
    assert_int_equal(m->f_uint32, 1000);
    assert_int_equal(m->f_sint32, 2);
    assert_true(m->f_uint64 == 100);
    assert_int_equal(m->f_fixed32, 0);
}

static void test_bytes(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m =
        parse_ok("{\"r_bytes\": [\"aGVsbG8\", \"-_8=\", \"+/8\", \"\", \"YQ==\", \"YWI=\"]}");
    assert_int_equal(m->n_r_bytes, 6);
    assert_int_equal(m->r_bytes[0].len, 5);
    assert_memory_equal(m->r_bytes[0].data, "hello", 5);
    assert_int_equal(m->r_bytes[1].len, 2);
    assert_memory_equal(m->r_bytes[1].data, "\xfb\xff", 2);
    assert_memory_equal(m->r_bytes[2].data, "\xfb\xff", 2);
    assert_int_equal(m->r_bytes[3].len, 0);
    assert_memory_equal(m->r_bytes[4].data, "a", 1);
    assert_memory_equal(m->r_bytes[5].data, "ab", 2);
    cleanup_free char *out = pbjson_from_message(&m->base, 0);
    assert_string_equal(out,
                        "{\"r_bytes\":[\"aGVsbG8=\",\"+/8=\",\"+/8=\",\"\",\"YQ==\",\"YWI=\"]}");

    /* Every byte value survives. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    AllTypes built = PBJSONTEST__ALL_TYPES__INIT;
    built.f_bytes.data = all;
    built.f_bytes.len = sizeof(all);
    assert_round_trip(&built, 0);
}

static void test_enums(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *a = parse_ok("{\"f_enum\": \"GREEN\"}");
    assert_int_equal(a->f_enum, PBJSONTEST__COLOR__GREEN);
    cleanup_all_types AllTypes *b = parse_ok("{\"f_enum\": -3}");
    assert_int_equal(b->f_enum, PBJSONTEST__COLOR__BLUE);
    cleanup_free char *bout = pbjson_from_message(&b->base, 0);
    assert_string_equal(bout, "{\"f_enum\":\"BLUE\"}");
    /* proto3 enums are open: an unnamed number is kept and printed as a number. */
    cleanup_all_types AllTypes *c = parse_ok("{\"f_enum\": 77}");
    assert_int_equal(c->f_enum, 77);
    cleanup_free char *cout = pbjson_from_message(&c->base, 0);
    assert_string_equal(cout, "{\"f_enum\":77}");
    assert_round_trip(c, 0);

    expect_error("{\"f_enum\": \"PURPLE\"}",
                 "field 'f_enum': unknown value 'PURPLE' for enum pbjsontest.Color");
    expect_error("{\"f_enum\": \"RED\\u0000\"}", "unknown value 'RED?' for enum");
    expect_error("{\"f_enum\": true}", "field 'f_enum': expected an enum name or number");
    expect_error("{\"f_enum\": 2147483648}", "out of range for enum");
}

static void test_maps(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m = parse_ok(
        "{\"labels\": {\"a\": \"1\", \"b\": \"\"}, \"sizes\": {\"x\": \"18446744073709551615\","
        " \"y\": 5}, \"by_id\": {\"-1\": {\"name\": \"n\"}, \"7\": {}},"
        " \"by_flag\": {\"true\": \"yes\", \"false\": \"no\"}, \"colors\": {\"9\": \"RED\"}}");
    assert_int_equal(m->n_labels, 2);
    assert_string_equal(m->labels[0]->key, "a");
    assert_string_equal(m->labels[0]->value, "1");
    assert_int_equal(m->n_sizes, 2);
    assert_true(m->sizes[0]->value == UINT64_MAX);
    assert_int_equal(m->n_by_id, 2);
    assert_int_equal(m->by_id[0]->key, -1);
    assert_string_equal(m->by_id[0]->value->name, "n");
    assert_true(m->by_flag[0]->key);
    assert_false(m->by_flag[1]->key);
    assert_true(m->colors[0]->key == 9);

    cleanup_free char *out = pbjson_from_message(&m->base, 0);
    assert_string_equal(out, "{\"labels\":{\"a\":\"1\",\"b\":\"\"},"
                             "\"sizes\":{\"x\":18446744073709551615,\"y\":5},"
                             "\"by_id\":{\"-1\":{\"name\":\"n\"},\"7\":{}},"
                             "\"by_flag\":{\"true\":\"yes\",\"false\":\"no\"},"
                             "\"colors\":{\"9\":\"RED\"}}");
    assert_round_trip(m, 0);

    expect_error("{\"labels\": [\"a\"]}",
                 "field 'labels': expected an object for a map, got array");
    expect_error("{\"labels\": {\"a\": 1}}",
                 "field 'labels[\"a\"]': expected a string, got number");
    expect_error("{\"sizes\": {\"a\": -1}}", "field 'sizes[\"a\"]': -1 is out of range for uint64");
    expect_error("{\"by_id\": {\"x\": {}}}", "field 'by_id[\"x\"]': string is not a number");
    expect_error("{\"by_id\": {\"1\": {}, \"1e0\": {}}}", "field 'by_id': duplicate map key");
    /* The same key twice is one member to json-c (the last wins). */
    cleanup_all_types AllTypes *same = parse_ok("{\"labels\": {\"k\": \"1\", \"k\": \"2\"}}");
    assert_int_equal(same->n_labels, 1);
    expect_error("{\"by_flag\": {\"yes\": \"x\"}}", "map key must be \"true\" or \"false\"");
    expect_error("{\"labels\": {\"a\": null}}", "null is not allowed as a map value");
    expect_error("{\"by_id\": {\"1\": {\"bad\": 0}}}",
                 "field 'by_id[\"1\"]': unknown field 'bad' in message pbjsontest.Nested");
}

static void test_oneof(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *a = parse_ok("{\"choice_msg\": {\"count\": 3}}");
    assert_int_equal(a->choice_case, PBJSONTEST__ALL_TYPES__CHOICE_CHOICE_MSG);
    assert_int_equal(a->choice_msg->count, 3);
    cleanup_free char *aout = pbjson_from_message(&a->base, 0);
    assert_string_equal(aout, "{\"choice_msg\":{\"count\":3}}");
    assert_round_trip(a, 0);

    /* A set member is shown even at its default value. */
    cleanup_all_types AllTypes *b = parse_ok("{\"choice_int\": 0, \"choice_str\": null}");
    assert_int_equal(b->choice_case, PBJSONTEST__ALL_TYPES__CHOICE_CHOICE_INT);
    cleanup_free char *bout = pbjson_from_message(&b->base, 0);
    assert_string_equal(bout, "{\"choice_int\":0}");
    assert_round_trip(b, 0);

    cleanup_all_types AllTypes *c = parse_ok("{\"choice_str\": \"\"}");
    assert_int_equal(c->choice_case, PBJSONTEST__ALL_TYPES__CHOICE_CHOICE_STR);
    assert_round_trip(c, PBJSON_EMIT_DEFAULTS);

    expect_error("{\"choice_str\": \"x\", \"choice_msg\": {}}",
                 "field 'choice_msg' is in the same oneof as 'choice_str', which is already set");
    expect_error("{\"choice_msg\": {\"name\": \"x\"}, \"choiceInt\": 1}",
                 "field 'choice_int' is in the same oneof as 'choice_msg'");
}

static void test_null_and_defaults(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m =
        parse_ok("{\"f_int32\": null, \"f_string\": null, \"nested\": null, \"r_int32\": null,"
                 " \"labels\": null, \"f_bytes\": null, \"f_enum\": null}");
    assert_int_equal(m->f_int32, 0);
    assert_string_equal(m->f_string, "");
    assert_null(m->nested);
    cleanup_free char *out = pbjson_from_message(&m->base, 0);
    assert_string_equal(out, "{}");

    /* Present-but-empty messages are shown; default scalars are not. */
    cleanup_all_types AllTypes *n =
        parse_ok("{\"nested\": {}, \"f_int32\": 0, \"f_string\": \"\", \"f_double\": 0}");
    cleanup_free char *nout = pbjson_from_message(&n->base, 0);
    assert_string_equal(nout, "{\"nested\":{}}");

    cleanup_free char *all = pbjson_from_message(&m->base, PBJSON_EMIT_DEFAULTS);
    assert_string_equal(
        all, "{\"f_int32\":0,\"f_sint32\":0,\"f_sfixed32\":0,\"f_int64\":0,\"f_sint64\":0,"
             "\"f_sfixed64\":0,\"f_uint32\":0,\"f_fixed32\":0,\"f_uint64\":0,\"f_fixed64\":0,"
             "\"f_float\":0,\"f_double\":0,\"f_bool\":false,\"f_enum\":\"COLOR_UNSPECIFIED\","
             "\"f_string\":\"\",\"f_bytes\":\"\",\"nested\":null,\"inner\":null,"
             "\"r_int32\":[],\"r_sint64\":[],\"r_uint64\":[],\"r_double\":[],\"r_float\":[],"
             "\"r_bool\":[],\"r_enum\":[],\"r_string\":[],\"r_bytes\":[],\"r_nested\":[],"
             "\"r_fixed32\":[],\"labels\":{},\"sizes\":{},\"by_id\":{},\"by_flag\":{},"
             "\"colors\":{}}");
    /* What EMIT_DEFAULTS prints parses back to the same message. */
    cleanup_all_types AllTypes *again = parse_ok(all);
    assert_same_wire(&m->base, &again->base);
}

static void test_pretty(void **state)
{
    (void)state;
    cleanup_all_types AllTypes *m =
        parse_ok("{\"f_int32\": 1, \"r_int32\": [1, 2], \"labels\": {\"k\": \"v\"},"
                 " \"nested\": {\"inner\": {}}, \"r_string\": []}");
    cleanup_free char *out = pbjson_from_message(&m->base, PBJSON_PRETTY);
    assert_string_equal(out, "{\n"
                             "  \"f_int32\": 1,\n"
                             "  \"nested\": {\n"
                             "    \"inner\": {}\n"
                             "  },\n"
                             "  \"r_int32\": [\n"
                             "    1,\n"
                             "    2\n"
                             "  ],\n"
                             "  \"labels\": {\n"
                             "    \"k\": \"v\"\n"
                             "  }\n"
                             "}");
    assert_round_trip(m, PBJSON_PRETTY);
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("{\"bogus\": 1}", "unknown field 'bogus' in message pbjsontest.AllTypes");
    expect_error("{\"nested\": {\"zzz\": 1}}",
                 "field 'nested': unknown field 'zzz' in message pbjsontest.Nested");
    expect_error("{\"bad\\u001b[31m\": 1}", "unknown field 'bad?[31m'");
    expect_error("{\"f_string\": 5}", "field 'f_string': expected a string, got number");
    expect_error("{\"f_int32\": true}",
                 "field 'f_int32': expected a number or numeric string, got boolean");
    expect_error("{\"f_int32\": \"12abc\"}", "field 'f_int32': string is not a number");
    expect_error("{\"f_int32\": \" 12\"}", "field 'f_int32': string is not a number");
    expect_error("{\"f_bool\": \"true\"}", "field 'f_bool': expected true or false, got string");
    expect_error("{\"f_bytes\": 12}", "field 'f_bytes': expected a base64 string, got number");
    expect_error("{\"r_int32\": 5}", "field 'r_int32': expected an array, got number");
    expect_error("{\"r_int32\": [1, null]}",
                 "field 'r_int32[1]': null is not allowed in a repeated field");
    expect_error("{\"r_int32\": [1, \"x\"]}", "field 'r_int32[1]': string is not a number");
    expect_error("{\"nested\": []}",
                 "field 'nested': expected an object for message pbjsontest.Nested, got array");
    expect_error("{\"r_nested\": [{}, {\"count\": -1}]}",
                 "field 'r_nested[1]': field 'count': -1 is out of range for uint32");
    expect_error("[]", "expected an object for message pbjsontest.AllTypes, got array");
    expect_error("{\"f_string\": \"a\\u0000b\"}", "field 'f_string': string contains a NUL");
    expect_error("{\"f_int32\": 1, \"fInt32\": 2}",
                 "field 'f_int32' given more than once in message pbjsontest.AllTypes");
    /* The same key twice is one member to json-c (the last wins), as to most JSON
     * libraries; the hand-written parser refused it. */
    cleanup_all_types AllTypes *dup = parse_ok("{\"f_int32\": 1, \"f_int32\": 2}");
    assert_int_equal(dup->f_int32, 2);
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect_error("{\"f_int32\": 2147483648}",
                 "field 'f_int32': 2147483648 is out of range for int32");
    expect_error("{\"f_int32\": -2147483649}", "-2147483649 is out of range for int32");
    expect_error("{\"f_sfixed32\": 3e9}", "3e9 is out of range for sfixed32");
    expect_error("{\"f_uint32\": -1}", "field 'f_uint32': -1 is out of range for uint32");
    expect_error("{\"f_fixed32\": 4294967296}", "out of range for fixed32");
    expect_error("{\"f_int64\": \"9223372036854775808\"}", "out of range for int64");
    /* Beyond 64 bits: exact as strings. json-c 0.16 clamps such number literals to
     * the 64-bit ends (0.17 refuses them), so only the string forms are checked. */
    expect_error("{\"f_sint64\": \"-9223372036854775809\"}", "out of range for sint64");
    expect_error("{\"f_uint64\": \"18446744073709551616\"}", "out of range for uint64");
    expect_error("{\"f_fixed64\": 1e20}", "1e20 is out of range for fixed64");
    expect_error("{\"f_uint64\": \"1e999\"}", "out of range for uint64");
    expect_error("{\"f_uint64\": 1e999}", "invalid JSON");
    expect_error("{\"f_int32\": 1.5}", "field 'f_int32': 1.5 is not an integer for int32");
    expect_error("{\"f_float\": 1e39}", "field 'f_float': 1e39 is out of range for float");
    expect_error("{\"f_double\": \"-1e400\"}", "-1e400 is out of range for double");
    expect_error("{\"f_double\": \"NaN\\u0000\"}", "field 'f_double': string is not a number");
    expect_error("{\"f_double\": \"nan\"}", "string is not a number");
    expect_error("{\"r_double\": [1, \"2e308\"]}", "field 'r_double[1]': 2e308 is out of range");
    expect_error("{\"r_double\": [1, 2e308]}", "NaN, Infinity and numbers beyond double");
}

static void test_bad_base64(void **state)
{
    (void)state;
    expect_error("{\"f_bytes\": \"abc$\"}", "field 'f_bytes': invalid base64 at character 4");
    expect_error("{\"f_bytes\": \"abcde\"}", "field 'f_bytes': invalid base64: bad length");
    expect_error("{\"f_bytes\": \"ab=\"}", "invalid base64: bad length or padding");
    expect_error("{\"f_bytes\": \"a===\"}", "invalid base64");
    expect_error("{\"f_bytes\": \"ab==cd==\"}", "invalid base64 at character 3");
    expect_error("{\"f_bytes\": \"aGVs bG8=\"}", "invalid base64 at character 5");
    expect_error("{\"r_bytes\": [\"AA==\", \"!\"]}", "field 'r_bytes[1]': invalid base64");
}

static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
    size_t lp = strlen(prefix), ls = strlen(suffix);
    char *s = ka_xmalloc(lp + n + ls + 1);
    memcpy(s, prefix, lp);
    memset(s + lp, c, n);
    memcpy(s + lp + n, suffix, ls + 1);
    return s;
}

/* Malformed input is json-c's to find; what is checked here is that it is refused
 * with an offset, and the bounds agent-ctl sets. */
static void test_malformed_json(void **state)
{
    (void)state;
    expect_error("{\"f_int32\": 1", "invalid JSON at offset 13: unexpected end of input");
    expect_error("{\"f_string\": \"abc", "invalid JSON at offset 17: unexpected end of input");
    expect_error("", "invalid JSON at offset 0: unexpected end of input");
    expect_error("{} x", "invalid JSON at offset 3:");
    expect_error("{}{}", "invalid JSON at offset 2:");
    expect_error("{\"a\" 1}", "invalid JSON at offset 5:");
    expect_error("{\"a\": 1,}", "invalid JSON at offset 8:");
    expect_error("{\"f_string\": \"\xc3\"}", "invalid JSON at offset 14: invalid UTF-8");

    /* Depth bomb: refused at the limit, long before the end. */
    cleanup_free char *bomb = repeat("", '[', 100000, "");
    expect_error_desc(&pbjsontest__all_types__descriptor, bomb, 100000,
                      "invalid JSON at offset 64: nesting too deep");
    cleanup_free char *nested = ka_xmalloc(100000 * 10);
    size_t n = 0;
    for (int i = 0; i < 100000; i++)
        n += (size_t)sprintf(nested + n, "{\"a\":");
    expect_json_error(nested, n, "nesting too deep");

    /* A huge number literal is json-c's to convert; a long one in a string is
     * refused before strtod. */
    cleanup_free char *huge = repeat("{\"f_double\": 1.", '1', 100000, "}");
    cleanup_all_types AllTypes *h = parse_ok(huge);
    assert_true(h->f_double > 1.1 && h->f_double < 1.2);
    cleanup_free char *huge_str = repeat("{\"f_int64\": \"", '9', 100000, "\"}");
    expect_error(huge_str, "string is not a number");
    cleanup_free char *huge_dstr = repeat("{\"f_double\": \"0.", '1', 5000, "\"}");
    expect_error(huge_dstr, "string is not a number");
    expect_error("{\"f_double\": \"Infinity \"}", "string is not a number");
    expect_error("{\"f_double\": \"1.\"}", "string is not a number");
}

static void test_json_parser(void **state)
{
    (void)state;
    struct ka_error err = {0};
    cleanup_json struct json_object *v = NULL;
    static const char text[] =
        " [true, false, null, -0.5e+3, \"\\ud83d\\ude00\\b\\f\\t\\r\", {}, [],"
        " {\"k\": 1, \"k\": 2}, 18446744073709551615, -9223372036854775808] ";
    assert_int_equal(ctl_json_parse(text, strlen(text), &v, &err), 0);
    assert_true(json_object_is_type(v, json_type_array));
    assert_int_equal(json_object_array_length(v), 10);
    assert_true(json_object_get_boolean(json_object_array_get_idx(v, 0)));
    assert_null(json_object_array_get_idx(v, 2));
    assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 4)),
                        "\xf0\x9f\x98\x80\b\f\t\r");
    /* 64-bit integers are exact at both ends. */
    assert_true(json_object_get_uint64(json_object_array_get_idx(v, 8)) == UINT64_MAX);
    assert_true(json_object_get_int64(json_object_array_get_idx(v, 9)) == INT64_MIN);

    /* Scalars at the top level, as RFC 8259 allows. */
    cleanup_json struct json_object *s = NULL;
    assert_int_equal(ctl_json_parse("\"x\"", 3, &s, &err), 0);
    cleanup_json struct json_object *num = NULL;
    assert_int_equal(ctl_json_parse("42", 2, &num, &err), 0);
    assert_int_equal(json_object_get_int(num), 42);
    cleanup_json struct json_object *nul = NULL;
    assert_int_equal(ctl_json_parse(" null ", 6, &nul, &err), 0);
    /* Embedded NUL bytes keep their length. */
    cleanup_json struct json_object *z = NULL;
    assert_int_equal(ctl_json_parse("\"a\\u0000b\"", 10, &z, &err), 0);
    assert_int_equal(json_object_get_string_len(z), 3);
    /* No NUL terminator is needed: the length bounds the parse. */
    cleanup_json struct json_object *cut = NULL;
    assert_int_equal(ctl_json_parse("123456", 3, &cut, &err), 0);
    assert_int_equal(json_object_get_int(cut), 123);

    /* Exactly JSON_MAX_DEPTH - 1 levels parse (json-c counts the value inside too). */
    cleanup_free char *deep = ka_xmalloc(2 * JSON_MAX_DEPTH + 1);
    memset(deep, '[', JSON_MAX_DEPTH - 1);
    memset(deep + JSON_MAX_DEPTH - 1, ']', JSON_MAX_DEPTH - 1);
    cleanup_json struct json_object *d = NULL;
    assert_int_equal(ctl_json_parse(deep, 2 * (JSON_MAX_DEPTH - 1), &d, &err), 0);
    memset(deep, '[', JSON_MAX_DEPTH + 1);
    expect_json_error(deep, JSON_MAX_DEPTH + 1, "nesting too deep");

    expect_json_error("01", 2, "invalid JSON at offset");
    expect_json_error(".5", 2, "invalid JSON at offset");
    expect_json_error("+1", 2, "invalid JSON at offset");
    expect_json_error("tru", 3, "unexpected end of input");
    expect_json_error("truex", 5, "invalid JSON at offset");
    expect_json_error("[1 2]", 5, "invalid JSON at offset 3");
    expect_json_error("[1,]", 4, "invalid JSON at offset 3");
    expect_json_error("\"\\x\"", 4, "invalid JSON at offset");
    expect_json_error("\"\\u12g4\"", 8, "invalid JSON at offset");
    expect_json_error("\"\xc3\"", 3, "offset 1: invalid UTF-8");
    expect_json_error("\"\xc0\xaf\"", 4, "invalid UTF-8");         /* overlong */
    expect_json_error("\"\xf4\x90\x80\x80\"", 6, "invalid UTF-8"); /* above U+10FFFF */
    expect_json_error("\"\xed\xa0\x80\"", 5, "invalid UTF-8");     /* encoded surrogate */
    expect_json_error("[\"a\"\0]", 5, "invalid JSON at offset");
    expect_json_error("\"abc\\", 5, "unexpected end of input");
    /* Not JSON, though json-c takes them even when strict. */
    expect_json_error("NaN", 3, "NaN, Infinity and numbers beyond double are not JSON");
    expect_json_error("[1, -Infinity]", 14, "NaN, Infinity");
    expect_json_error("{\"a\": 1e400}", 12, "NaN, Infinity");
    /* The size cap is checked before any byte is read. */
    expect_json_error("x", (size_t)JSON_MAX_INPUT_LEN + 1, "input larger than 64 MiB");
}

static void test_json_writer(void **state)
{
    (void)state;
    cleanup_json struct json_object *obj = ctl_json_ok(json_object_new_object());
    struct json_object *arr = ctl_json_ok(json_object_new_array());
    json_object_array_add(arr, ctl_json_string("\x01\x1f\x7f\"\\/\xff\xc3\xa9\xed\xa0\x80", 12));
    json_object_array_add(arr, ctl_json_ok(json_object_new_double_s(-1500, "-1.5e3")));
    json_object_array_add(arr, ctl_json_ok(json_object_new_boolean(false)));
    json_object_array_add(arr, NULL);
    json_object_array_add(arr, ctl_json_ok(json_object_new_object()));
    json_object_object_add(obj, "a\nb", arr);
    cleanup_free char *out = ctl_json_write(obj, false);
    /* Invalid UTF-8 (0xff, an encoded surrogate) becomes U+FFFD; control characters
     * are escaped; '/' is not. */
    assert_string_equal(out, "{\"a\\nb\":[\"\\u0001\\u001f\x7f\\\"\\\\/\xef\xbf\xbd\xc3\xa9"
                             "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",-1.5e3,false,null,{}]}");
    /* And the result parses back. */
    struct ka_error err = {0};
    cleanup_json struct json_object *back = NULL;
    assert_int_equal(ctl_json_parse(out, strlen(out), &back, &err), 0);
    /* Pretty output keeps empty containers on one line. */
    cleanup_free char *pretty = ctl_json_write(obj, true);
    assert_non_null(strstr(pretty, "  \"a\\nb\": [\n"));
    assert_non_null(strstr(pretty, "    {}\n  ]"));
}

static Pbjsontest__Node *node_chain(int depth)
{
    Pbjsontest__Node *root = NULL;
    for (int i = 0; i < depth; i++) {
        Pbjsontest__Node *n = ka_xmalloc(sizeof(*n));
        pbjsontest__node__init(n);
        n->child = root;
        n->value = i;
        root = n;
    }
    return root;
}

static void test_depth(void **state)
{
    (void)state;
    /* 64 nested objects are 64 messages, which print fine. */
    char buf[64 * 12 + 1];
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        n += (size_t)sprintf(buf + n, i < 63 ? "{\"child\":" : "{");
    for (int i = 0; i < 64; i++)
        buf[n++] = '}';
    buf[n] = '\0';
    struct ka_error err = {0};
    ProtobufCMessage *m = NULL;
    assert_int_equal(pbjson_to_message(&pbjsontest__node__descriptor, buf, n, &m, &err), 0);
    cleanup_free char *out = pbjson_from_message(m, 0);
    assert_non_null(out);
    protobuf_c_message_free_unpacked(m, NULL);

    /* Deeper messages (only buildable in C or from the wire) are refused on output. */
    Pbjsontest__Node *ok = node_chain(PBJSON_MAX_DEPTH);
    cleanup_free char *ok_out = pbjson_from_message(&ok->base, 0);
    assert_non_null(ok_out);
    protobuf_c_message_free_unpacked(&ok->base, NULL);
    Pbjsontest__Node *deep = node_chain(PBJSON_MAX_DEPTH + 1);
    assert_null(pbjson_from_message(&deep->base, 0));
    protobuf_c_message_free_unpacked(&deep->base, NULL);
    assert_null(pbjson_from_message(NULL, 0));
}

/* Errors after part of a message is built: the sanitizer's leak check at exit is
 * the assertion that the partial message was freed. */
static void test_partial_messages_freed(void **state)
{
    (void)state;
    expect_error("{\"f_string\": \"x\", \"r_string\": [\"a\", \"b\", 5]}", "r_string[2]");
    expect_error("{\"labels\": {\"a\": \"x\", \"b\": 5}}", "labels[\"b\"]");
    expect_error("{\"r_nested\": [{\"name\": \"x\"}, {\"bad\": 1}]}", "r_nested[1]");
    expect_error("{\"nested\": {\"name\": \"x\", \"inner\": {\"flag\": 1}}}", "field 'flag'");
    expect_error("{\"choice_str\": \"x\", \"choice_msg\": {\"name\": \"y\"}}", "same oneof");
    expect_error("{\"r_bytes\": [\"AAAA\", \"A\"]}", "r_bytes[1]");
    expect_error("{\"by_id\": {\"1\": {\"name\": \"a\"}, \"2\": {\"count\": \"x\"}}}",
                 "by_id[\"2\"]");
    expect_error("{\"choice_msg\": {\"name\": \"a\", \"count\": -5}}", "choice_msg");
    expect_error("{\"nested\": {\"name\": \"x\"}, \"f_bytes\": \"AA==\", \"zz\": 1}", "zz");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_non_finite_floats),
        cmocka_unit_test(test_repeated),
        cmocka_unit_test(test_camel_case_names),
        cmocka_unit_test(test_integer_forms),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_oneof),
        cmocka_unit_test(test_null_and_defaults),
        cmocka_unit_test(test_pretty),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_json_parser),
        cmocka_unit_test(test_json_writer),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_partial_messages_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
