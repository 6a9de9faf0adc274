/**
 * The function catalogue. `read` is an allowlist: a call is side-effect free only when the
 * function is listed here. Functions known to have effects carry their class; every other
 * function (user-defined, extension, unknown) makes the statement `opaque`.
 */
import type { SqlClass } from '@airlock/api';

const READ = `
abs acos acosd acosh age array_agg array_append array_cat array_dims array_fill array_length array_lower
array_ndims array_position array_positions array_prepend array_remove array_replace array_to_json
array_to_string array_upper ascii asin asind asinh atan atan2 atan2d atand atanh avg bit_and bit_count
bit_length bit_or bit_xor bool_and bool_or btrim cardinality cbrt ceil ceiling char_length character_length
chr clock_timestamp coalesce col_description concat concat_ws convert convert_from convert_to corr cos cosd
cosh cot cotd count covar_pop covar_samp cume_dist current_database current_date current_query
current_schema current_schemas current_setting current_time current_timestamp current_user date_bin
date_part date_trunc decode degrees dense_rank div encode every exp extract factorial first_value floor
format format_type gcd gen_random_uuid generate_series generate_subscripts get_bit get_byte greatest
has_any_column_privilege has_column_privilege has_database_privilege has_function_privilege
has_schema_privilege has_sequence_privilege has_table_privilege host hostmask inet_client_addr
inet_server_addr initcap isfinite json_agg json_array_elements json_array_elements_text json_array_length
json_build_array json_build_object json_each json_each_text json_extract_path json_extract_path_text
json_object json_object_agg json_object_keys json_populate_record json_strip_nulls json_typeof
jsonb_agg jsonb_array_elements jsonb_array_elements_text jsonb_array_length jsonb_build_array
jsonb_build_object jsonb_each jsonb_each_text jsonb_extract_path jsonb_extract_path_text jsonb_insert
jsonb_object jsonb_object_agg jsonb_object_keys jsonb_path_exists jsonb_path_match jsonb_path_query
jsonb_path_query_array jsonb_path_query_first jsonb_populate_record jsonb_pretty jsonb_set jsonb_strip_nulls
jsonb_typeof justify_days justify_hours justify_interval lag last_value lcm lead least left length ln
localtime localtimestamp log log10 lower lpad ltrim make_date make_interval make_time make_timestamp
make_timestamptz masklen max md5 min min_scale mod mode netmask network now nth_value ntile nullif
num_nonnulls num_nulls obj_description octet_length overlay percent_rank percentile_cont percentile_disc
pg_backend_pid pg_column_size pg_database_size pg_get_constraintdef pg_get_expr pg_get_functiondef
pg_get_indexdef pg_get_viewdef pg_indexes_size pg_is_in_recovery pg_postmaster_start_time
pg_relation_size pg_size_pretty pg_table_is_visible pg_table_size pg_total_relation_size pg_typeof
pi position power quote_ident quote_literal quote_nullable radians random rank regexp_count
regexp_instr regexp_like regexp_match regexp_matches regexp_replace regexp_split_to_array
regexp_split_to_table regexp_substr regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope
regr_sxx regr_sxy regr_syy repeat replace set_config reverse right round row_number row_to_json rpad rtrim scale
session_user set_bit set_byte sha224 sha256 sha384 sha512 sign sin sind sinh split_part sqrt
starts_with statement_timestamp stddev stddev_pop stddev_samp string_agg string_to_array
string_to_table strpos substr substring sum tan tand tanh timeofday to_ascii to_char to_date to_hex
to_json to_jsonb to_number to_regclass to_regproc to_regtype to_timestamp to_tsquery to_tsvector
transaction_timestamp translate trim trim_scale trunc ts_headline ts_rank ts_rank_cd unistr unnest
upper user var_pop var_samp variance version websearch_to_tsquery width_bucket xmlagg xmlconcat
xmlelement xmlforest
`;

/** Functions with a known effect. */
const EFFECTS: Readonly<Record<string, SqlClass>> = {
  nextval: 'write',
  setval: 'write',
  pg_advisory_lock: 'write',
  pg_advisory_xact_lock: 'write',
  pg_try_advisory_lock: 'write',
  pg_notify: 'write',
  lo_create: 'write',
  lo_unlink: 'admin',
  lo_import: 'admin',
  lo_export: 'admin',
  lo_from_bytea: 'write',
  lo_put: 'write',
  pg_read_file: 'admin',
  pg_read_binary_file: 'admin',
  pg_ls_dir: 'admin',
  pg_ls_logdir: 'admin',
  pg_ls_waldir: 'admin',
  pg_ls_tmpdir: 'admin',
  pg_stat_file: 'admin',
  pg_file_write: 'admin',
  pg_file_rename: 'admin',
  pg_file_unlink: 'admin',
  pg_terminate_backend: 'admin',
  pg_cancel_backend: 'admin',
  pg_reload_conf: 'admin',
  pg_rotate_logfile: 'admin',
  pg_switch_wal: 'admin',
  pg_promote: 'admin',
  pg_create_restore_point: 'admin',
  pg_backup_start: 'admin',
  pg_backup_stop: 'admin',
  pg_create_physical_replication_slot: 'admin',
  pg_create_logical_replication_slot: 'admin',
  pg_drop_replication_slot: 'admin',
  pg_replication_origin_create: 'admin',
  dblink: 'admin',
  dblink_exec: 'admin',
  dblink_connect: 'admin',
  dblink_connect_u: 'admin',
  dblink_send_query: 'admin',
  pg_sleep: 'read',
  pg_sleep_for: 'read',
  pg_sleep_until: 'read',
};

const READ_SET: ReadonlySet<string> = new Set(READ.split(/\s+/).filter((s) => s !== ''));

export interface FunctionClass {
  /** schema.function as rules see it */
  readonly qualified: string;
  readonly cls: SqlClass;
}

/** Classifies a call by its (possibly qualified) name. Built-ins count only in pg_catalog. */
export function classifyFunction(names: readonly string[]): FunctionClass {
  const name = names[names.length - 1] ?? '';
  const schema = names.length >= 2 ? names[names.length - 2] : undefined;
  const builtinSchema = schema === undefined || schema === 'pg_catalog';
  if (names.length > 2 || !builtinSchema) return { qualified: `${schema ?? 'public'}.${name}`, cls: opaqueUnlessEffect(name, schema) };
  const effect = EFFECTS[name];
  if (effect !== undefined) return { qualified: `pg_catalog.${name}`, cls: effect };
  // set_config is read-only unless it sets role or session_authorization: the caller inspects its arguments.
  if (READ_SET.has(name)) return { qualified: `pg_catalog.${name}`, cls: 'read' };
  return { qualified: `${schema ?? 'public'}.${name}`, cls: 'opaque' };
}

/** dblink and adminpack live in extension schemas: recognise them there too. */
function opaqueUnlessEffect(name: string, schema: string | undefined): SqlClass {
  const effect = EFFECTS[name];
  return effect === 'admin' && schema !== undefined ? 'admin' : 'opaque';
}
