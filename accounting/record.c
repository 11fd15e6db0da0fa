/* Accounting records (see record.h). */
#include <errno.h>
#include <string.h>

#include "record.h"

static const char *string_field(struct json_object *obj, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool accounting_stats_all_ice(struct json_object *stats)
{
	struct json_object *streams;
	size_t n;

	if (!json_object_object_get_ex(stats, "streams", &streams) ||
	    !json_object_is_type(streams, json_type_array))
		return true;
	n = json_object_array_length(streams);
	for (size_t i = 0; i < n; i++) {
		const char *status = string_field(json_object_array_get_idx(streams, i), "status");

		if (!status || strcmp(status, "unselected ICE candidate"))
			return false;
	}
	return true;
}

bool accounting_stats_started(struct json_object *stats)
{
	struct json_object *start;

	return json_object_object_get_ex(stats, "start_time", &start) &&
	       !json_object_is_type(start, json_type_null);
}

/* json_object_object_add() replaces an existing key, so a relay that
 * already sent one of these fields cannot make us write it twice. */
static int add_field(struct json_object *obj, const char *name, struct json_object *value,
		     bool null_allowed)
{
	if (!value && !null_allowed)
		return -ENOMEM;
	if (json_object_object_add(obj, name, value)) {
		json_object_put(value);
		return -ENOMEM;
	}
	return 0;
}

int accounting_record_complete(struct json_object *stats, const char *dialog_id,
			       bool expired)
{
	bool ice = expired && accounting_stats_all_ice(stats);
	struct json_object *id = NULL;

	if (dialog_id && dialog_id[0]) {
		id = json_object_new_string(dialog_id);
		if (!id)
			return -ENOMEM;
	}
	if (add_field(stats, "dialog_id", id, true) ||
	    add_field(stats, "timed_out", json_object_new_boolean(expired && !ice), false))
		return -ENOMEM;
	if (expired && add_field(stats, "all_streams_ice", json_object_new_boolean(ice), false))
		return -ENOMEM;
	return 0;
}

int accounting_record_parse(const char *json, size_t len, struct accounting_record *out,
			    struct json_object **owned)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj, *to_tag;

	*owned = NULL;
	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, json, (int)len);
	/* Trailing bytes after the object mean the line is not one record. */
	if (obj && json_tokener_get_parse_end(tok) != len) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	if (!obj || !json_object_is_type(obj, json_type_object))
		goto invalid;
	*out = (struct accounting_record){
		.json = json, .len = len, .obj = obj,
		.call_id = string_field(obj, "call_id"),
		.from_tag = string_field(obj, "from_tag"),
		.to_tag = string_field(obj, "to_tag"),
	};
	if (!out->call_id || !out->from_tag)
		goto invalid;
	if (!out->to_tag && json_object_object_get_ex(obj, "to_tag", &to_tag) &&
	    !json_object_is_type(to_tag, json_type_null))
		goto invalid;
	*owned = obj;
	return 0;
invalid:
	json_object_put(obj);
	return -EINVAL;
}
