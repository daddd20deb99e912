// Vietnamese first; English on the toggle. Keys are short names of what is shown.
const vi = {
  title: "Trung tâm điều hành IOC", skip: "Bỏ qua đến nội dung chính",
  signin: "Đăng nhập", signin_help: "Nhập khóa API do quản trị viên cấp (ioc api keys create). Khóa chỉ được giữ trong thẻ trình duyệt này.",
  api_key: "Khóa API", signout: "Đăng xuất", bad_key: "Khóa không hợp lệ hoặc đã bị thu hồi.",
  view_board: "Cảnh báo", view_map: "Bản đồ", view_health: "KPI và nguồn dữ liệu", view_scorecards: "Xếp hạng và báo cáo",
  live: "Trực tuyến", reconnecting: "Đang kết nối lại…", connecting: "Đang kết nối…",
  limited: "Khóa này đã mở quá nhiều luồng trực tiếp; thử lại sau 10 giây",
  lang: "English", wall: "Chế độ màn hình lớn", sound: "Âm thanh cảnh báo", on: "bật", off: "tắt",
  group_by: "Nhóm theo", filters: "Bộ lọc", severity: "Mức độ", state: "Trạng thái",
  province: "Tỉnh/thành", commune: "Xã/phường", rule: "Quy tắc", clear_filters: "Xóa bộ lọc",
  any: "(tất cả)", groups: "nhóm", alerts: "cảnh báo", expand: "Mở", collapse: "Thu gọn",
  expand_all: "Mở tất cả", collapse_all: "Thu gọn tất cả",
  critical: "Nghiêm trọng", warning: "Cảnh báo", info: "Thông tin",
  pending: "Chờ xác định", firing: "Đang kích hoạt", acknowledged: "Đã xác nhận", resolved: "Đã xử lý",
  inactive: "Không hoạt động",
  shared_labels: "Nhãn chung", communes: "Xã/phường", worst: "Cao nhất", count: "Số lượng",
  ack: "Xác nhận", resolve: "Xử lý xong", silence: "Tạm ẩn", details: "Chi tiết",
  ack_group: "Xác nhận cả nhóm", resolve_group: "Xử lý cả nhóm", silence_group: "Tạm ẩn cả nhóm",
  note: "Ghi chú", note_ph: "Ví dụ: Đội môi trường đang kiểm tra", confirm: "Thực hiện", cancel: "Hủy", close: "Đóng",
  ack_title: "Xác nhận cảnh báo", resolve_title: "Đánh dấu đã xử lý", silence_title: "Tạo lệnh tạm ẩn",
  applies_to: "Áp dụng cho", n_alerts: "{n} cảnh báo",
  matchers: "Điều kiện khớp (mỗi dòng một điều kiện, ví dụ commune_code=\"00004\")",
  duration: "Thời lượng", comment: "Lý do", preview: "Xem trước", preview_n: "Khớp {n} cảnh báo đang hoạt động",
  silences: "Lệnh tạm ẩn đang hiệu lực", expire: "Kết thúc ngay", no_silences: "Không có lệnh tạm ẩn nào.",
  created_by: "Người tạo", ends: "Kết thúc", audit: "Nhật ký thao tác", audit_entry: "Nhật ký",
  done_ok: "Đã thực hiện", failed: "Không thực hiện được", forbidden: "Khóa này không có quyền thao tác (cần vai trò operator).",
  new_critical: "{n} cảnh báo nghiêm trọng mới", dismiss: "Đã thấy",
  backfilled: "Dữ liệu bổ sung (lịch sử)", history_section: "Lịch sử — cảnh báo từ dữ liệu bổ sung, không phải sự cố mới",
  labels: "Nhãn", annotations: "Mô tả", value: "Giá trị", threshold: "Ngưỡng", clear_level: "Ngưỡng hết cảnh báo",
  history: "Lịch sử chuyển trạng thái", at: "Thời điểm", from_to: "Chuyển", actor: "Người thực hiện",
  chart: "Diễn biến chỉ số trong cửa sổ của quy tắc", window: "Cửa sổ", no_series: "Không có chuỗi số liệu cho quy tắc này.",
  started: "Bắt đầu", updated: "Cập nhật", fingerprint: "Mã cảnh báo", other_lang: "Bản tiếng Anh",
  map_title: "Bản đồ xã/phường theo cảnh báo cao nhất", approx_note: "Ranh giới có dấu nét đứt là gần đúng (suy ra từ tâm xã), không phải ranh giới chính thức.",
  legend: "Chú giải", none: "Không có cảnh báo", approximate: "gần đúng", communes_alerting: "Xã/phường có cảnh báo",
  drill: "Chi tiết xã/phường", active_alerts: "Cảnh báo đang hoạt động", latest_readings: "Số đo gần nhất",
  metric: "Chỉ số", last: "Giá trị cuối", kpis_today: "KPI dịch vụ công hôm nay", target: "Mục tiêu",
  met: "Đạt", not_met: "Chưa đạt", no_data: "Chưa có dữ liệu", dossiers: "Hồ sơ tiếp nhận hôm nay",
  kpi_headline: "KPI toàn tỉnh hôm nay", feeds: "Tình trạng nguồn dữ liệu theo sở/ngành",
  sources: "Nguồn", silent: "Im lặng", last_received: "Nhận lần cuối", rates: "Tốc độ (sự kiện/giây, 5 phút)",
  rejections: "Bị từ chối theo lý do", dead_letters: "Mẫu sự kiện bị từ chối gần đây", reason: "Lý do",
  event: "Sự kiện", source_event: "Nguồn / sự kiện", message: "Thông báo", raw: "Nội dung gốc", tail_note: "Tính trên {n} thư bị từ chối gần nhất của topic ioc.deadletter.v1 (từ {since}).",
  dept_scope: "Khóa của sở/ngành: chỉ hiển thị nguồn dữ liệu của {d}.", refresh: "Làm mới",
  kbd_help: "Phím tắt: 1 cảnh báo · 2 bản đồ · 3 KPI · 4 sự cố · / bộ lọc · w màn hình lớn · l ngôn ngữ · j/k chuyển nhóm",
  role: "Vai trò", viewer_note: "Vai trò viewer: chỉ xem, không có thao tác.", empty: "Không có cảnh báo nào khớp bộ lọc.",
  online_share: "Tỷ lệ hồ sơ trực tuyến", on_time_share: "Tỷ lệ giải quyết đúng hạn", resolved_online_share: "Tỷ lệ trả kết quả trực tuyến",
  paid_online_share: "Tỷ lệ thanh toán trực tuyến", digitised_share: "Tỷ lệ số hóa hồ sơ",
  show_more: "Hiện thêm {n}", unknown: "không rõ",
  truncated: "Quá nhiều cảnh báo: chỉ hiển thị 20.000 cảnh báo thay đổi gần nhất. Hãy lọc theo tỉnh, quy tắc hoặc mức độ.",
  kpi_drill: "Xem theo xã/phường", dossiers_received: "Hồ sơ tiếp nhận", dossiers_short: "Hồ sơ", day: "Ngày", tier_province: "Cấp tỉnh", tier_commune: "Cấp xã", tier_unassigned: "Chưa phân cấp",
};

const en = {
  title: "IOC Operations Center", skip: "Skip to main content",
  signin: "Sign in", signin_help: "Enter the API key your administrator issued (ioc api keys create). It is kept in this browser tab only.",
  api_key: "API key", signout: "Sign out", bad_key: "Unknown or revoked key.",
  view_board: "Alerts", view_map: "Map", view_health: "KPIs and feeds", view_scorecards: "Scorecards and reports",
  live: "Live", reconnecting: "Reconnecting…", connecting: "Connecting…",
  limited: "Too many live streams open with this key; retrying every 10 s",
  lang: "Tiếng Việt", wall: "Wall mode", sound: "Alarm sound", on: "on", off: "off",
  group_by: "Group by", filters: "Filters", severity: "Severity", state: "State",
  province: "Province", commune: "Commune", rule: "Rule", clear_filters: "Clear filters",
  any: "(any)", groups: "groups", alerts: "alerts", expand: "Expand", collapse: "Collapse",
  expand_all: "Expand all", collapse_all: "Collapse all",
  critical: "Critical", warning: "Warning", info: "Info",
  pending: "Pending", firing: "Firing", acknowledged: "Acknowledged", resolved: "Resolved", inactive: "Inactive",
  shared_labels: "Shared labels", communes: "Communes", worst: "Worst", count: "Count",
  ack: "Acknowledge", resolve: "Resolve", silence: "Silence", details: "Details",
  ack_group: "Acknowledge group", resolve_group: "Resolve group", silence_group: "Silence group",
  note: "Note", note_ph: "e.g. Environment team is checking", confirm: "Apply", cancel: "Cancel", close: "Close",
  ack_title: "Acknowledge alerts", resolve_title: "Resolve by hand", silence_title: "Create a silence",
  applies_to: "Applies to", n_alerts: "{n} alerts",
  matchers: "Matchers (one per line, e.g. commune_code=\"00004\")",
  duration: "Duration", comment: "Reason", preview: "Preview", preview_n: "Matches {n} active alerts",
  silences: "Silences in effect", expire: "Expire now", no_silences: "No silences.",
  created_by: "Created by", ends: "Ends", audit: "Audit trail", audit_entry: "Audit",
  done_ok: "Done", failed: "Failed", forbidden: "This key may not act (the operator role is needed).",
  new_critical: "{n} new critical alerts", dismiss: "Seen",
  backfilled: "Backfilled (history)", history_section: "History — alerts from backfilled data, not new emergencies",
  labels: "Labels", annotations: "Annotations", value: "Value", threshold: "Threshold", clear_level: "Clear level",
  history: "Transition history", at: "At", from_to: "Change", actor: "Actor",
  chart: "The metric over the rule's window", window: "Window", no_series: "No series for this rule.",
  started: "Started", updated: "Updated", fingerprint: "Fingerprint", other_lang: "Vietnamese text",
  map_title: "Communes by worst active alert", approx_note: "Dashed outlines are approximate (derived from commune centroids), not official boundaries.",
  legend: "Legend", none: "No alert", approximate: "approximate", communes_alerting: "Communes with alerts",
  drill: "Commune drill-down", active_alerts: "Active alerts", latest_readings: "Latest readings",
  metric: "Metric", last: "Last value", kpis_today: "Today's public-service KPIs", target: "Target",
  met: "Met", not_met: "Not met", no_data: "No data yet", dossiers: "Dossiers received today",
  kpi_headline: "Province KPIs today", feeds: "Feed health by department",
  sources: "Sources", silent: "Silent", last_received: "Last received", rates: "Rates (events/s, 5 min)",
  rejections: "Rejections by reason", dead_letters: "Recent dead letters (sample)", reason: "Reason",
  event: "Event", source_event: "Source / event", message: "Message", raw: "Raw", tail_note: "Over the last {n} dead letters of ioc.deadletter.v1 (since {since}).",
  dept_scope: "Department key: showing {d}'s feeds only.", refresh: "Refresh",
  kbd_help: "Keys: 1 alerts · 2 map · 3 KPIs · 4 incidents · / filters · w wall mode · l language · j/k next/previous group",
  role: "Role", viewer_note: "Viewer role: read only, no actions.", empty: "No alert matches the filters.",
  online_share: "Online submissions", on_time_share: "Resolved on time", resolved_online_share: "Results returned online",
  paid_online_share: "Fees paid online", digitised_share: "Records digitised",
  show_more: "Show {n} more", unknown: "unknown",
  truncated: "Too many alerts: only the 20,000 most recently changed are shown. Filter by province, rule or severity.",
  kpi_drill: "By commune", dossiers_received: "Dossiers received", dossiers_short: "Dossiers", day: "Day", tier_province: "Province tier", tier_commune: "Commune tier", tier_unassigned: "Unassigned",
};

const dicts = { vi, en };

/** Texts of a view kept in its own module (incident_texts.js): merged, never overriding. */
export function addTexts(more) {
  for (const [l, d] of Object.entries(more)) for (const [k, s] of Object.entries(d)) if (!(k in dicts[l])) dicts[l][k] = s;
}
let lang = "vi";

export function setLang(l) { lang = l === "en" ? "en" : "vi"; document.documentElement.lang = lang; }
export function getLang() { return lang; }
export function t(key, vars) {
  let s = dicts[lang][key] ?? dicts.vi[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(lang === "vi" ? "vi-VN" : "en-GB", { timeZone: "Asia/Ho_Chi_Minh", hour12: false,
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
export function fmtNum(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return Number(v).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: digits });
}
export function fmtPct(v) {
  if (v === null || v === undefined) return "—";
  return Number(v * 100).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: 1 }) + " %";
}
