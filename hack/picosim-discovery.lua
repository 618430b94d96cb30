-- Wireshark dissector for the Pico W discovery frames on UDP 37020, as
-- picosim and the original MicroPython helpers send them:
--   HELLO     [1, name_len, name]
--   FULL      [2, count, (ip[4], name_len, name)*]
--   HEARTBEAT [3, incarnation u32, seq u32, slot u16, name_len, name,
--              count, (ip[4], incarnation u32, seq u32, age_ms u16)*]
--   LEAVE     [4, incarnation u32]
-- Use: wireshark -X lua_script:hack/picosim-discovery.lua capture.pcapng
--      tshark -X lua_script:hack/picosim-discovery.lua -r capture.pcapng -Y picosim
-- Filter fields: picosim.type, picosim.name, picosim.member.ip, picosim.slot...

local p = Proto("picosim", "Pico W discovery")
local types = { [1] = "HELLO", [2] = "FULL", [3] = "HEARTBEAT", [4] = "LEAVE" }
local f = {
  type = ProtoField.uint8("picosim.type", "Type", base.DEC, types),
  name = ProtoField.string("picosim.name", "Name"),
  count = ProtoField.uint8("picosim.count", "Count"),
  ip = ProtoField.ipv4("picosim.member.ip", "Member address"),
  member = ProtoField.string("picosim.member.name", "Member name"),
  inc = ProtoField.uint32("picosim.incarnation", "Incarnation"),
  seq = ProtoField.uint32("picosim.seq", "Heartbeat number"),
  slot = ProtoField.uint16("picosim.slot", "Worker number"),
  age = ProtoField.uint16("picosim.witness.age_ms", "Heard ms ago"),
}
p.fields = { f.type, f.name, f.count, f.ip, f.member, f.inc, f.seq, f.slot, f.age }

local function name_at(buf, tree, field, off)
  if buf:len() < off + 1 then return nil end
  local n = buf(off, 1):uint()
  if buf:len() < off + 1 + n then return nil end
  tree:add(field, buf(off + 1, n))
  return off + 1 + n, buf(off + 1, n):string()
end

function p.dissector(buf, pinfo, root)
  if buf:len() < 1 then return 0 end
  local t = buf(0, 1):uint()
  if not types[t] then return 0 end
  pinfo.cols.protocol = "PICOSIM"
  local tree = root:add(p, buf(), "Pico W discovery: " .. types[t])
  tree:add(f.type, buf(0, 1))
  local info = types[t]
  if t == 1 then
    local _, name = name_at(buf, tree, f.name, 1)
    info = info .. " from " .. (name or "?")
  elseif t == 2 and buf:len() >= 2 then
    local count = buf(1, 1):uint()
    tree:add(f.count, buf(1, 1))
    local off = 2
    for i = 1, count do
      if buf:len() < off + 5 then break end
      local m = tree:add(p, buf(off), "Member " .. i)
      m:add(f.ip, buf(off, 4))
      off = name_at(buf, m, f.member, off + 4)
      if not off then break end
    end
    info = info .. " (" .. count .. " members)"
  elseif t == 3 and buf:len() >= 12 then
    tree:add(f.inc, buf(1, 4))
    tree:add(f.seq, buf(5, 4))
    tree:add(f.slot, buf(9, 2))
    local off, name = name_at(buf, tree, f.name, 11)
    info = info .. " " .. (name or "?") .. " #" .. buf(5, 4):uint()
    if off and buf:len() > off then
      local count = buf(off, 1):uint()
      off = off + 1
      for i = 1, count do
        if buf:len() < off + 14 then break end
        local w = tree:add(p, buf(off, 14), "Witness " .. i)
        w:add(f.ip, buf(off, 4))
        w:add(f.inc, buf(off + 4, 4))
        w:add(f.seq, buf(off + 8, 4))
        w:add(f.age, buf(off + 12, 2))
        off = off + 14
      end
    end
  elseif t == 4 and buf:len() >= 5 then
    tree:add(f.inc, buf(1, 4))
  end
  pinfo.cols.info = info
  return buf:len()
end

DissectorTable.get("udp.port"):add(37020, p)
