-- The operator documentation stays true to the binary: the configuration reference lists every
-- key with its current default and liveness, and the README names every timenetctl verb.
local H = require("harness")

describe("documentation", function()
    it("doc/config.md is what `make doc` generates from timenetd --print-config", function()
        local generated = H.sh(H.BIN .. " --print-config | lua5.4 lua/configdoc.lua") .. "\n"
        local file = H.read_file("doc/config.md") or ""
        if generated ~= file then
            -- name the first differing line, not 8 KB of text
            local g, f = {}, {}
            for l in generated:gmatch("[^\n]*\n") do g[#g + 1] = l end
            for l in file:gmatch("[^\n]*\n") do f[#f + 1] = l end
            for i = 1, math.max(#g, #f) do
                if g[i] ~= f[i] then
                    error(string.format("doc/config.md is out of date (run `make doc`): line %d is\n  %s"
                        .. "but timenetd says\n  %s", i, f[i] or "(missing)\n", g[i] or "(nothing)\n"))
                end
            end
        end
    end)

    it("the README's CLI reference names every timenetctl verb", function()
        local readme = H.read_file("README.md"):gsub("\\|", "|") -- pipes escaped in tables
        local help = H.sh(H.BUILD .. "/timenetctl help")
        local missing = {}
        for usage in help:match("\nverbs:\n(.-)\n\n"):gmatch("  (%S.-)%s%s+[^\n]*") do
            if not readme:find("`" .. usage .. "`", 1, true) then missing[#missing + 1] = usage end
        end
        assert.are.same({}, missing, "verbs missing from README.md (as `usage` in backquotes)")
    end)
end)
